import type { EngineAdapter, EngineProps } from '../engines/adapter.js';

/**
 * Lifecycle of one replica (one engine process). Only `ready` replicas take work (ORCH-3010).
 * `unready` carries the cause an operator needs (exit code, signal, failed self-test, timeout).
 */
export type ReplicaState =
  | { readonly kind: 'starting' }
  | { readonly kind: 'preloading' }
  | { readonly kind: 'self-test' }
  | { readonly kind: 'ready' }
  | {
      readonly kind: 'unready';
      readonly cause: string;
      /** True while the replica may come back by itself (restart scheduled, engine loading). */
      readonly retrying?: boolean;
      /** Its host is gone: tasks running on it cannot finish. */
      readonly lost?: boolean;
    }
  | { readonly kind: 'stopped' };

export type ReplicaStateKind = ReplicaState['kind'];

/** What the dispatcher sees of a replica: identity, state, and the adapter to talk to it. */
export interface ReplicaView {
  /** `<pool_id>-r<index>`, stable across restarts. */
  readonly id: string;
  readonly poolId: string;
  readonly state: ReplicaState;
  readonly adapter: EngineAdapter;
  /** Engine properties read during the startup self-test; undefined until then. */
  readonly props: EngineProps | undefined;
}

/** Owns the engine processes of one pool (single host; pool-managerd runs the same code). */
export interface PoolSupervisor {
  readonly poolId: string;
  /** True when the replicas are engine simulators (`launch.worker: sim`), not real engines. */
  readonly simulated?: boolean;
  /** Launches every replica; resolves when each is ready or has failed (see its state). */
  start(): Promise<void>;
  /** Stops every engine process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  replicas(): readonly ReplicaView[];
  /** Called on every replica state change. Returns an unsubscribe function. */
  onChange(listener: (replica: ReplicaView) => void): () => void;
  /**
   * Kills one replica's engine and restarts it under the restart policy and breaker, e.g. when
   * it keeps failing tasks although its health checks pass (outlier ejection, SPEC §17 §5). The
   * replica comes back through its startup self-test. Resolves true once it is ready again, false
   * when it will not come back or the restart could not be carried out.
   */
  restartReplica(replicaId: string, cause: string): Promise<boolean>;
}
