/**
 * The orchestrator's periodic work: the deadline sweep (queued tasks that can no longer meet
 * their deadline end early, ETA-aware under overload), session expiry and fleet gauges, the pools'
 * SLO breakers, and the additive-only SSE `metrics` frames of live tasks (ORCH-3100).
 */
import type { Clock } from '../domain/types.js';
import { costOf, hasSessionBudget, remaining } from '../sessions/budget.js';
import type { SessionLedger } from '../sessions/session-ledger.js';
import type { SessionStore } from '../sessions/session-store.js';
import { replicaExhausted } from './failure.js';
import type { FleetGauges } from './fleet-gauges.js';
import { onTimeProbability } from './on-time.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { SloBreakerWatch } from './slo-shedding.js';
import type { TaskLifecycle } from './task-lifecycle.js';
import { runMs, type TaskView } from './task-record.js';
import type { TaskTable } from './task-table.js';

export interface PeriodicWorkOptions {
  readonly pools: readonly PoolRuntime[];
  readonly table: TaskTable;
  readonly lifecycle: TaskLifecycle;
  readonly sessions: SessionStore;
  readonly ledger: SessionLedger;
  readonly gauges: FleetGauges;
  readonly clock: Clock;
  /** SLO breakers are also evaluated here, so that one can close while no task finishes. */
  readonly sloBreakers?: SloBreakerWatch;
}

export class PeriodicWork {
  readonly #o: PeriodicWorkOptions;
  #sweeps = 0;

  constructor(opts: PeriodicWorkOptions) {
    this.#o = opts;
  }

  /** Queued tasks that can no longer meet their deadline end with REPLICA_EXHAUSTED (SPEC §2.5). */
  sweep(): void {
    const now = this.#o.clock.now();
    // Session expiry and the per-replica gauges walk every session: every 2 s is plenty, and
    // keeps a 100k-task backlog from pausing admission five times a second.
    if (this.#sweeps++ % 10 === 0) {
      this.#o.sessions.sweep();
      this.#o.gauges.refresh(this.#o.pools, this.#o.sessions.values());
    }
    for (const pool of this.#o.pools) {
      this.#o.sloBreakers?.evaluate(pool);
      // Under overload (more queued than free slots), a task that could not finish by its
      // deadline even if it started now is ended early instead of waiting to fail (ETA-aware).
      const overloaded = pool.queue.size > pool.freeSlots();
      // Only entries due within the longest service time can be doomed: the deadline index
      // hands over just those, so a deep queue with distant deadlines costs nothing here.
      const horizon = overloaded ? (pool.predictor.serviceMsForCost(pool.queue.maxCost) ?? 0) : 0;
      for (const entry of pool.queue.dueBy(now + horizon)) {
        const task = this.#o.table.get(entry.id);
        if (!task) continue;
        const late = task.deadlineAtMs <= now;
        if (!late && !(overloaded && pool.cannotMeet(entry.cost, task.deadlineAtMs))) continue;
        this.#o.lifecycle.finish(
          task,
          pool,
          replicaExhausted(
            pool,
            task,
            late ? 'before its deadline' : 'in time: it cannot finish before its deadline',
          ),
        );
      }
    }
  }

  /** Periodic, additive-only SSE `metrics` frames for every live task (ORCH-3100). */
  metricsFrames(): void {
    const now = this.#o.clock.now();
    for (const task of this.#o.table.live()) {
      const queued = task.state.kind === 'queued';
      // A queued task nobody is streaming needs no status frame: at 100k queued tasks, frames
      // for all of them would cost O(queue²) per period and grow every log.
      if (queued && !task.log.watched) continue;
      const pool = this.#poolOf(task);
      const ahead = queued ? (pool.queue.positionOf(task.spec.taskId) ?? 0) : 0;
      const remainingTokens = Math.max(0, task.spec.maxTokens - task.tokensOut);
      const serviceMs = pool.predictServiceMs(0, remainingTokens);
      const predictedFinishMs = (queued ? pool.predictStartMs(ahead) : 0) + (serviceMs ?? 0);
      this.#o.lifecycle.metrics(task, {
        queue_depth: pool.queue.size,
        queue_position: ahead,
        on_time_probability: onTimeProbability(predictedFinishMs, task.deadlineAtMs - now),
        kv_warmth: task.kvWarm,
        tokens_out: task.tokensOut,
        // Unknown until the pool has measured its decode rate: omitted rather than guessed.
        eta_ms:
          serviceMs !== undefined && Number.isFinite(predictedFinishMs)
            ? Math.max(0, Math.ceil(predictedFinishMs))
            : undefined,
        pool_id: pool.id,
        ...this.#budgetRemainders(task),
        ...(task.replicaId === undefined ? {} : { replica_id: task.replicaId }),
      });
    }
  }

  /** Budget remainders of a running task's session, counting what the task used so far. */
  #budgetRemainders(task: TaskView): Record<string, number> {
    const pool = this.#poolOf(task);
    if (!hasSessionBudget(pool.config.budgets)) return {};
    const tokensIn = task.tokensIn || task.spec.promptTokens;
    const usage = this.#o.ledger.inFlight(task.spec.tenant, task.spec.sessionId, task.spec.taskId, {
      tokens: tokensIn + task.tokensOut,
      wallMs: runMs(task, this.#o.clock.now()),
      cost: costOf(pool.config.prices, tokensIn, task.tokensOut),
    });
    const r = remaining(usage, pool.config.budgets);
    const out: Record<string, number> = {};
    if (r.tokens !== undefined) out['tokens_remaining'] = r.tokens;
    if (r.wallMs !== undefined) out['time_remaining_ms'] = Math.floor(r.wallMs);
    if (r.cost !== undefined) out['cost_remaining'] = r.cost;
    return out;
  }

  #poolOf(task: TaskView): PoolRuntime {
    const pool = this.#o.pools.find((p) => p.id === task.poolId);
    if (!pool) throw new Error(`unknown pool ${task.poolId}`);
    return pool;
  }
}
