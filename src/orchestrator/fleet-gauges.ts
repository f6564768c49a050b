/**
 * Fleet-level metrics the orchestrator keeps beside scheduling (SPEC §12, §15): task outcomes,
 * the rolling SLO window per priority, deadline attainment, preload outcomes and readiness, and
 * the periodic per-replica gauges (KV residency, slots) and queue capacities.
 */
import type { OrchMetrics } from '../metrics/metrics.js';
import { SloWindow } from '../scheduler/slo-window.js';
import type { Session } from '../sessions/session-store.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskView } from './task-record.js';

/** Replica states of the preload phase; leaving them is a preload outcome. */
const PRELOAD_KINDS: ReadonlySet<string> = new Set(['starting', 'preloading', 'self-test']);

export type TaskOutcome = 'completed' | 'canceled' | 'failed';

export const outcomeOf = (task: TaskView): TaskOutcome =>
  task.state.kind === 'completed' ? 'completed' : task.state.kind === 'canceled' ? 'canceled' : 'failed';

export class FleetGauges {
  readonly #metrics: OrchMetrics;
  readonly #slo = new SloWindow();
  readonly #deadlines = new Map<string, { met: number; total: number }>();
  readonly #replicaKinds = new Map<string, string>();

  constructor(metrics: OrchMetrics) {
    this.#metrics = metrics;
  }

  /** A task reached its terminal event. */
  finished(task: TaskView, pool: PoolRuntime): void {
    const priority = task.spec.priority;
    this.#metrics.inc('tasks_finished_total', {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      priority,
      outcome: outcomeOf(task),
    });
    // Cancel is the client's choice: it counts toward neither SLOs nor deadlines.
    if (task.state.kind === 'canceled') return;
    const ttftMs =
      task.firstTokenAtMs === undefined ? undefined : task.firstTokenAtMs - task.spec.acceptedAtMs;
    const ok = task.state.kind === 'completed';
    pool.slo.record(priority, ttftMs, ok);
    this.#slo.record(priority, ttftMs, ok);
    const d = this.#deadlines.get(priority) ?? { met: 0, total: 0 };
    d.total++;
    if (ok && (task.finishedAtMs ?? 0) <= task.deadlineAtMs) d.met++;
    this.#deadlines.set(priority, d);
    this.#metrics.set('deadlines_met_ratio', { priority }, d.met / d.total);
  }

  /** A pool's replicas changed state: preload outcomes and readiness. */
  replicasChanged(pool: PoolRuntime): void {
    for (const r of pool.supervisor.replicas()) {
      const before = this.#replicaKinds.get(r.id);
      this.#replicaKinds.set(r.id, r.state.kind);
      // First sight of a replica counts too: it may have finished preloading before we looked.
      if ((before !== undefined && !PRELOAD_KINDS.has(before)) || PRELOAD_KINDS.has(r.state.kind)) continue;
      const outcome = r.state.kind === 'ready' ? 'ready' : 'failed';
      this.#metrics.inc('pool_preload_total', { engine: pool.config.engine, pool_id: pool.id, outcome });
    }
    this.#metrics.set(
      'pool_ready',
      { engine: pool.config.engine, pool_id: pool.id },
      pool.readyReplicas().length,
    );
  }

  /** Periodic gauges: the SLO window, KV residency per replica (SPEC §2.4), slots, capacities. */
  refresh(pools: readonly PoolRuntime[], sessions: Iterable<Session>): void {
    for (const [priority, slo] of Object.entries(this.#slo.snapshot())) {
      if (slo.ttft_p95_ms !== null) this.#metrics.set('slo_ttft_p95_ms', { priority }, slo.ttft_p95_ms);
      this.#metrics.set('slo_error_ratio', { priority }, slo.error_rate);
      this.#metrics.set('slo_met', { priority }, slo.met ? 1 : 0);
    }
    const resident = new Map<string, number>();
    for (const s of sessions)
      if (s.lastReplicaId !== undefined)
        resident.set(s.lastReplicaId, (resident.get(s.lastReplicaId) ?? 0) + 1);
    for (const pool of pools) {
      const engine = pool.config.engine;
      this.#metrics.set('queue_capacity', { engine, pool_id: pool.id }, pool.queue.capacity);
      for (const r of pool.supervisor.replicas()) {
        const labels = { engine, pool_id: pool.id, replica_id: r.id };
        this.#metrics.set('kv_sessions_resident', labels, resident.get(r.id) ?? 0);
        this.#metrics.set('replica_slots', labels, r.state.kind === 'ready' ? pool.slotsOf(r) : 0);
        this.#metrics.set('replica_slots_busy', labels, pool.inFlight.get(r.id) ?? 0);
      }
    }
  }
}
