/**
 * The bookkeeping that follows a task's life, each a lifecycle observer: tenant quota slots,
 * observed fairness shares, the session budget ledger, session KV affinity, fleet gauges and
 * task spans.
 */
import type { Clock } from '../domain/types.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { ShareTracker } from '../scheduler/share-tracker.js';
import type { TenantQuotas } from '../scheduler/tenant-quotas.js';
import { costOf } from '../sessions/budget.js';
import type { SessionLedger } from '../sessions/session-ledger.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { TaskTracer } from '../tracing/task-tracer.js';
import type { FleetGauges } from './fleet-gauges.js';
import type { SloBreakerWatch } from './slo-shedding.js';
import type { TaskObserver } from './task-lifecycle.js';
import { runMs } from './task-record.js';
import { tracedTask } from './traced-task.js';

/** A task holds one of its tenant's `max_concurrent` slots from acceptance to its end. */
export const quotaRelease = (quotas: TenantQuotas): TaskObserver => ({
  accepted: (task) => quotas.acquire(task.spec.tenant),
  finished: (task) => quotas.release(task.spec.tenant),
});

/** Service given to each tenant and class, against which `admission_share` is reported. */
export function fairShares(shares: ShareTracker, metrics: OrchMetrics): TaskObserver {
  return {
    dispatched(task) {
      shares.serve(`${task.spec.tenant}\u0000${task.spec.priority}`, Math.max(1, task.cost));
      for (const k of shares.keys()) {
        const [tenant = '', priority = ''] = k.split('\u0000');
        metrics.set('admission_share', { tenant, priority }, shares.share(k));
      }
    },
  };
}

/** The task's budget reservation becomes what it used (SPEC §3.6). */
export const budgetSettlement = (ledger: SessionLedger): TaskObserver => ({
  finished(task, pool) {
    ledger.settle(
      task.spec.tenant,
      task.spec.sessionId,
      task.spec.taskId,
      {
        tokens: task.tokensIn + task.tokensOut,
        wallMs: runMs(task),
        cost: costOf(pool.config.prices, task.tokensIn, task.tokensOut),
      },
      pool.config.budgets,
    );
  },
});

/** A completed turn leaves its KV on the replica (and slot) that served it (ORCH-3009). */
export const sessionAffinity = (sessions: SessionStore): TaskObserver => ({
  finished(task, _pool, t) {
    if (t.kind !== 'completed' || task.replicaId === undefined) return;
    const session = sessions.get(task.spec.tenant, task.spec.sessionId);
    if (!session) return;
    // The task may have moved to another member of its replica set: the KV is where it ran.
    session.poolId = task.poolId;
    session.lastReplicaId = task.replicaId;
    session.lastSlotId = t.slotId;
    session.kvTokens = task.tokensIn + task.tokensOut;
  },
});

export const fleetOutcomes = (gauges: FleetGauges): TaskObserver => ({
  finished: (task, pool) => gauges.finished(task, pool),
});

/** After `fleetOutcomes` recorded the task in its pool's SLO window: the pool's SLO breaker. */
export const sloBreakers = (watch: SloBreakerWatch): TaskObserver => ({
  finished: (_task, pool) => watch.evaluate(pool),
});

export const taskSpans = (tracer: TaskTracer, clock: Clock): TaskObserver => ({
  finished: (task, pool) => tracer.finished(tracedTask(task, pool, clock.now())),
});
