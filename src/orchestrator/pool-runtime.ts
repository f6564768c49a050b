import type { ResolvedPool } from '../config/resolved-config.js';
import type { Priority } from '../domain/types.js';
import type { PoolSupervisor, ReplicaView } from '../pool/replica.js';
import { DrainEstimator } from '../scheduler/drain-estimator.js';
import type { ReplicaLoad } from '../scheduler/placement.js';
import { PoolQueue, type QueueEntry } from '../scheduler/pool-queue.js';

/** A queued task as the pool queue sees it. */
export interface QueuedTask extends QueueEntry {
  readonly priority: Priority;
}

/** Readiness of a pool as admission sees it (SPEC §2.1 step 3). */
export type PoolAvailability = 'ready' | 'unready' | 'unavailable';

/** Everything the orchestrator keeps per pool: its queue, its replicas and what it learned. */
export class PoolRuntime {
  readonly config: ResolvedPool;
  readonly queue: PoolQueue<QueuedTask>;
  readonly supervisor: PoolSupervisor;
  readonly estimator = new DrainEstimator({ alpha: 0.2, initialServiceMs: 1000 });
  /** Tasks running per replica id (our own accounting; the engine's slot state is a cross-check). */
  readonly inFlight = new Map<string, number>();

  constructor(config: ResolvedPool, supervisor: PoolSupervisor, weights: Readonly<Record<Priority, number>>) {
    this.config = config;
    this.supervisor = supervisor;
    this.queue = new PoolQueue<QueuedTask>({
      capacity: config.queue.capacity,
      priorityCapacity: config.queue.priorityCapacity,
      fullPolicy: config.queue.fullPolicy,
      weights,
    });
  }

  get id(): string {
    return this.config.id;
  }

  readyReplicas(): ReplicaView[] {
    return this.supervisor.replicas().filter((r) => r.state.kind === 'ready');
  }

  availability(): PoolAvailability {
    const replicas = this.supervisor.replicas();
    if (replicas.some((r) => r.state.kind === 'ready')) return 'ready';
    const coming = replicas.some(
      (r) =>
        r.state.kind === 'starting' ||
        r.state.kind === 'preloading' ||
        r.state.kind === 'self-test' ||
        (r.state.kind === 'unready' && r.state.retrying === true),
    );
    return coming ? 'unready' : 'unavailable';
  }

  /** Slots per replica: what the engine reported at self-test, else the configured `parallel`. */
  slotsOf(r: ReplicaView): number {
    return r.props?.slotsTotal ?? this.config.launch.parallel;
  }

  readySlots(): number {
    return this.readyReplicas().reduce((n, r) => n + this.slotsOf(r), 0);
  }

  freeSlots(): number {
    return this.loads().reduce((n, r) => n + Math.max(0, r.slotsTotal - r.inFlight), 0);
  }

  loads(): ReplicaLoad[] {
    return this.readyReplicas().map((r) => ({
      id: r.id,
      slotsTotal: this.slotsOf(r),
      inFlight: this.inFlight.get(r.id) ?? 0,
    }));
  }

  /** True when the replicas are engine simulators, not real engines. */
  get simulated(): boolean {
    return this.supervisor.simulated === true;
  }

  #props() {
    return (this.readyReplicas().find((r) => r.props) ?? this.supervisor.replicas().find((r) => r.props))
      ?.props;
  }

  /** The served model's digest: configured, else what the replicas reported. */
  modelDigest(): string | undefined {
    return this.config.model.digest ?? this.#props()?.modelDigest;
  }

  continuousBatching(): boolean {
    return this.#props()?.features.continuousBatching ?? this.config.launch.contBatching;
  }

  /** Whether the pool's engine produces embeddings (from the replicas' self-test properties). */
  servesEmbeddings(): boolean {
    const props = this.readyReplicas().find((r) => r.props)?.props;
    return (
      props?.features.embeddings === true && this.readyReplicas().some((r) => r.adapter.embed !== undefined)
    );
  }

  /** Engine version of the pool's replicas (they form one replica set). */
  engineVersion(): string {
    // Ready replicas define the set; a refused replica may report another version.
    for (const r of this.readyReplicas()) if (r.props) return r.props.engineVersion;
    for (const r of this.supervisor.replicas()) if (r.props) return r.props.engineVersion;
    return 'unknown';
  }

  replica(id: string): ReplicaView | undefined {
    return this.supervisor.replicas().find((r) => r.id === id);
  }

  /** Wait before a queue place frees, from the measured drain rate (SPEC §2.6). */
  backoffMs(): number {
    return this.estimator.backoffMs(this.readySlots());
  }

  predictStartMs(ahead: number): number {
    return this.estimator.predictStartMs(ahead, this.freeSlots(), this.readySlots());
  }
}
