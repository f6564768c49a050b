/**
 * Metrics and structured logs of a task's life (SPEC §12), as a lifecycle observer: the counters
 * and histograms of the metrics contract, queue-depth gauges, and one log line per step.
 */
import type { Clock, Priority } from '../domain/types.js';
import type { TaskTracer } from '../tracing/task-tracer.js';
import type { RefusalObserver } from './admit.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import { PRIORITIES } from '../domain/types.js';
import { onTimeProbability } from './on-time.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskObserver } from './task-lifecycle.js';
import type { TaskView } from './task-record.js';

/** The structured-log fields of SPEC §12 that apply to `task`. */
export function taskLogFields(
  task: TaskView,
  pool: PoolRuntime,
  weights?: Readonly<Record<Priority, number>>,
): Record<string, unknown> {
  const s = task.spec;
  return {
    job_id: s.taskId,
    session_id: s.sessionId,
    tenant_id: s.tenant,
    correlation_id: s.correlationId,
    engine: pool.config.engine,
    pool_id: pool.id,
    replica_id: task.replicaId,
    model_id: pool.config.model.id,
    quant: pool.config.model.quant,
    ctx: s.ctx,
    engine_version: pool.engineVersion(),
    sampler_profile_version: s.samplerProfileVersion,
    kv_warmth: task.kvWarm,
    priority: s.priority,
    deadline_ms: s.deadlineMs,
    tokens_in: task.tokensIn,
    tokens_out: task.tokensOut,
    tensor_split: pool.config.tensorSplit,
    weight: weights?.[s.priority],
    preempted: task.preemptions > 0,
  };
}

/** `queue_depth{engine,engine_version,pool_id,priority}` after every step that moves the queue. */
export function queueDepthObserver(metrics: OrchMetrics): TaskObserver & { update(p: PoolRuntime): void } {
  const update = (pool: PoolRuntime): void => {
    for (const priority of PRIORITIES)
      metrics.set(
        'queue_depth',
        { engine: pool.config.engine, engine_version: pool.engineVersion(), pool_id: pool.id, priority },
        pool.queue.sizeOf(priority),
      );
  };
  return {
    update,
    accepted: (_t, pool) => update(pool),
    dispatched: (_t, pool) => update(pool),
    requeued: (_t, pool) => update(pool),
    moved: (_t, from, to) => {
      update(from);
      update(to);
    },
    finished: (task, pool) => {
      if (task.dispatchedAtMs === undefined || task.state.kind === 'queued') update(pool);
    },
  };
}

export function taskTelemetry(
  metrics: OrchMetrics,
  logger: Logger,
  weights: Readonly<Record<Priority, number>>,
): TaskObserver {
  const fields = (task: TaskView, pool: PoolRuntime) => taskLogFields(task, pool, weights);
  const poolLabels = (pool: PoolRuntime) => ({
    engine: pool.config.engine,
    engine_version: pool.engineVersion(),
    pool_id: pool.id,
  });
  return {
    accepted(task, pool, a) {
      metrics.inc('tasks_enqueued_total', {
        ...poolLabels(pool),
        replica_id: '',
        priority: task.spec.priority,
      });
      // The line's fields (a prediction among them) cost more than the metric: built only when logged.
      if (!logger.isLevelEnabled('info')) return;
      const s = task.spec;
      logger.info(
        {
          ...fields(task, pool),
          event: 'admission.accepted',
          queue_position: a.position,
          predicted_start_ms: a.predictedStartMs,
          on_time_probability: onTimeProbability(
            a.predictedStartMs +
              (pool.predictServiceMs(s.promptTokens, s.expectedTokens ?? s.maxTokens) ?? 0),
            s.deadlineMs,
          ),
        },
        'task accepted',
      );
    },
    dispatched(task, pool) {
      const labels = poolLabels(pool);
      const now = task.dispatchedAtMs ?? 0;
      metrics.inc('tasks_started_total', {
        ...labels,
        replica_id: task.replicaId ?? '',
        priority: task.spec.priority,
      });
      const resumed = task.preemptions > 0;
      const again = task.redispatches > 0;
      if (resumed) metrics.inc('resumptions_total', { engine: pool.config.engine });
      else if (!again)
        metrics.observe(
          'queue_wait_ms',
          { ...labels, priority: task.spec.priority },
          now - task.spec.acceptedAtMs,
        );
      const event = resumed ? 'task.resumed' : again ? 'task.redispatched' : 'task.dispatched';
      logger.info(
        { ...fields(task, pool), event, queue_time_ms: now - task.spec.acceptedAtMs },
        event.replace('.', ' '),
      );
    },
    firstToken(task, pool) {
      metrics.observe(
        'latency_first_token_ms',
        { ...poolLabels(pool), priority: task.spec.priority },
        (task.firstTokenAtMs ?? 0) - task.spec.acceptedAtMs,
      );
    },
    redispatching(task, pool, failedOn, error) {
      logger.warn(
        { ...fields(task, pool), event: 'task.redispatching', failed_replica_id: failedOn, code: error.code },
        `replica ${failedOn} failed before the first token (${error.message}); dispatching once more elsewhere`,
      );
    },
    requeued(_task, pool) {
      metrics.inc('preemptions_total', { mode: 'hard', engine: pool.config.engine });
    },
    moved(task, from, to) {
      logger.debug(
        { ...fields(task, to), event: 'task.moved', from_pool_id: from.id },
        `queued task moved from pool ${from.id} to ${to.id} (same replica set)`,
      );
    },
    finished(task, pool, t) {
      const now = task.finishedAtMs ?? 0;
      const labels = { ...poolLabels(pool), replica_id: task.replicaId ?? '' };
      const decodeTimeMs = task.firstTokenAtMs === undefined ? 0 : now - task.firstTokenAtMs;
      const log = {
        ...fields(task, pool),
        queue_time_ms: (task.dispatchedAtMs ?? now) - task.spec.acceptedAtMs,
        decode_time_ms: decodeTimeMs,
      };
      switch (t.kind) {
        case 'completed':
          metrics.observe(
            'latency_decode_ms',
            { ...poolLabels(pool), priority: task.spec.priority },
            decodeTimeMs,
          );
          logger.info({ ...log, event: 'task.completed', stop_reason: t.end.stop_reason }, 'task completed');
          return;
        case 'canceled':
          metrics.inc('tasks_canceled_total', { ...labels, reason: t.reason });
          logger.info({ ...log, event: 'task.canceled', reason: t.reason }, 'task canceled');
          return;
        case 'failed':
        case 'evicted':
          if (t.kind === 'evicted') {
            metrics.inc('tasks_rejected_total', { engine: pool.config.engine, reason: t.error.code });
            if (t.cause === 'soft-preemption')
              metrics.inc('preemptions_total', { mode: 'soft', engine: pool.config.engine });
            else
              metrics.inc('admission_backpressure_events_total', {
                engine: pool.config.engine,
                policy: pool.config.queue.fullPolicy,
              });
          }
          logger.warn(
            { ...log, event: `task.${t.kind}`, code: t.error.code, preempted: t.error.preempted ?? false },
            t.error.message,
          );
          return;
      }
    },
  };
}

/** One log line, a counter and a span per refused admission (SPEC §12). */
export function refusalTelemetry(
  metrics: OrchMetrics,
  logger: Logger,
  clock: Clock,
  tracer: TaskTracer | undefined,
): RefusalObserver {
  return ({ principal, input, correlationId, error: err, pool }) => {
    if (pool) metrics.inc('tasks_rejected_total', { engine: pool.config.engine, reason: err.code });
    tracer?.rejected({
      correlationId,
      tenant: principal.tenant,
      taskId: input.taskId,
      code: err.code,
      atMs: clock.now(),
      poolId: pool?.id,
    });
    logger.info(
      {
        event: 'admission.rejected',
        job_id: input.taskId,
        session_id: input.sessionId,
        tenant_id: principal.tenant,
        correlation_id: correlationId,
        engine: pool?.config.engine ?? input.engine,
        pool_id: pool?.id,
        model_ref: input.modelRef,
        priority: input.priority,
        code: err.code,
      },
      err.message,
    );
  };
}
