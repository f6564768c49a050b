import type { GpuDevice } from '../config/resolved-config.js';
import type { EngineAdapter, EngineProps } from '../engines/adapter.js';
import type { GpuSnapshot } from '../gpu/gpu-snapshot.js';

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
  /** The GPUs it runs on; undefined for CPU replicas. */
  readonly gpu?: ReplicaGpu | undefined;
}

/** Where a replica runs on GPUs (SPEC §17 §4: each replica may have its own devices). */
export interface ReplicaGpu {
  /** Its device mask as configured (indices or UUIDs): its engine's `CUDA_VISIBLE_DEVICES`. */
  readonly devices: readonly GpuDevice[];
  /** Leader of its engine's process group, while an engine runs here (local replicas). */
  readonly pid?: number | undefined;
  /** The node it runs on (remote replicas). */
  readonly host?: string | undefined;
  /** Its engine's own memory per device, as its node measured it (remote replicas). */
  readonly memoryBytes?: ReadonlyMap<string, number> | undefined;
}

/** GPU telemetry of one host that runs a pool's engines (`host` undefined: this host). */
export interface HostGpuTelemetry {
  readonly host: string | undefined;
  /** Undefined when that host has no usable nvidia-smi reading at all. */
  readonly snapshot: GpuSnapshot | undefined;
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
  /** GPU telemetry of the hosts its engines run on (remote pools: their nodes' heartbeats). */
  gpuTelemetry?(): readonly HostGpuTelemetry[];
  /**
   * Kills one replica's engine and restarts it under the restart policy and breaker, e.g. when
   * it keeps failing tasks although its health checks pass (outlier ejection, SPEC §17 §5). The
   * replica comes back through its startup self-test. Resolves true once it is ready again, false
   * when it will not come back or the restart could not be carried out.
   */
  restartReplica(replicaId: string, cause: string): Promise<boolean>;
}
