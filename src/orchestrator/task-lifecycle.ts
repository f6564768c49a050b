/**
 * The one funnel every task passes through when it ends (ARCHITECTURE: "exactly one terminal
 * event"): append the terminal event, update counters, log, and schedule the record's removal.
 */
import type { EndData, ErrorData } from '../domain/events.js';
import type { Clock } from '../domain/types.js';
import type { ErrorCode } from '../errors/codes.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskRecord } from './task-record.js';

export type Terminal =
  | { readonly kind: 'completed'; readonly end: EndData }
  | { readonly kind: 'canceled'; readonly end: EndData; readonly reason: 'client' | 'session-deleted' }
  | { readonly kind: 'failed'; readonly error: ErrorData }
  | { readonly kind: 'evicted'; readonly error: ErrorData };

export interface TaskLifecycleOptions {
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly retentionMs: number;
  /** Forget a finished task (its events are no longer readable). */
  readonly forget: (task: TaskRecord) => void;
  /** Called once when a task reached its terminal event (quotas, budgets, deadline metrics). */
  readonly onFinish?: (task: TaskRecord, pool: PoolRuntime) => void;
  /** Fairness weight per priority, logged with each task (SPEC §12). */
  readonly weights?: Readonly<Record<string, number>>;
}

export class TaskLifecycle {
  readonly #o: TaskLifecycleOptions;

  constructor(opts: TaskLifecycleOptions) {
    this.#o = opts;
  }

  /** The structured-log fields of SPEC §12 that apply to `task`. */
  fields(task: TaskRecord, pool: PoolRuntime): Record<string, unknown> {
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
      weight: this.#o.weights?.[s.priority],
      preempted: task.preemptions > 0,
    };
  }

  /** Ends `task` once. Returns false (and changes nothing) when it had already ended. */
  finish(task: TaskRecord, pool: PoolRuntime, t: Terminal): boolean {
    if (task.terminal) return false;
    const now = this.#o.clock.now();
    task.finishedAtMs = now;
    const labels = {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      replica_id: task.replicaId ?? '',
    };
    const queueTimeMs = (task.dispatchedAtMs ?? now) - task.spec.acceptedAtMs;
    const decodeTimeMs = task.firstTokenAtMs === undefined ? 0 : now - task.firstTokenAtMs;
    const log = { ...this.fields(task, pool), queue_time_ms: queueTimeMs, decode_time_ms: decodeTimeMs };
    switch (t.kind) {
      case 'completed':
        task.state = { kind: 'completed' };
        task.log.append({ type: 'end', data: { ...t.end, queue_ms: queueTimeMs, ...servedBy(task, pool) } });
        this.#o.metrics.observe(
          'latency_decode_ms',
          {
            engine: labels.engine,
            engine_version: labels.engine_version,
            pool_id: labels.pool_id,
            priority: task.spec.priority,
          },
          decodeTimeMs,
        );
        this.#o.logger.info(
          { ...log, event: 'task.completed', stop_reason: t.end.stop_reason },
          'task completed',
        );
        break;
      case 'canceled':
        task.state = { kind: 'canceled' };
        task.log.append({ type: 'end', data: { ...t.end, queue_ms: queueTimeMs } });
        this.#o.metrics.inc('tasks_canceled_total', { ...labels, reason: t.reason });
        this.#o.logger.info({ ...log, event: 'task.canceled', reason: t.reason }, 'task canceled');
        break;
      case 'failed':
      case 'evicted':
        task.state = { kind: t.kind, code: t.error.code };
        task.log.append({ type: 'error', data: t.error });
        if (t.kind === 'evicted') this.countRejected(pool, t.error.code);
        this.#o.logger.warn(
          { ...log, event: `task.${t.kind}`, code: t.error.code, preempted: t.error.preempted ?? false },
          t.error.message,
        );
        break;
    }
    this.#o.onFinish?.(task, pool);
    const timer = setTimeout(() => this.#o.forget(task), this.#o.retentionMs);
    timer.unref();
    return true;
  }

  countRejected(pool: PoolRuntime, reason: ErrorCode): void {
    this.#o.metrics.inc('tasks_rejected_total', { engine: pool.config.engine, reason });
  }
}

/** Which replica served a completed task, and its identity (clients check determinism with it). */
function servedBy(task: TaskRecord, pool: PoolRuntime): { replica_id?: string; engine_version?: string } {
  if (task.replicaId === undefined) return {};
  const props = pool.replica(task.replicaId)?.props;
  return { replica_id: task.replicaId, engine_version: props?.engineVersion ?? pool.engineVersion() };
}
