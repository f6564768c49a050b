/** How a dispatched task that did not complete ends: the terminal error for each cause. */
import type { ErrorData } from '../domain/events.js';
import { OrchError } from '../errors/orch-error.js';
import type { Logger } from '../util/logger.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskRecord } from './task-record.js';

export type Failed = { kind: 'failed'; error: ErrorData };

export function failureOf(pool: PoolRuntime, task: TaskRecord, err: unknown, logger: Logger): Failed {
  const engine = pool.config.engine;
  const cause = task.abortCause;
  const fail = (error: Omit<ErrorData, 'engine'>): Failed => ({
    kind: 'failed',
    error: { ...error, engine },
  });
  if (cause === 'wall-timeout' || cause === 'idle-timeout') {
    const limit = cause === 'wall-timeout' ? pool.config.timeouts.wallMs : pool.config.timeouts.idleMs;
    return fail({
      code: 'DECODE_TIMEOUT',
      message: `${cause === 'wall-timeout' ? 'wall' : 'idle'} timeout of ${limit} ms exceeded`,
      retriable: true,
    });
  }
  if (cause?.startsWith('budget-') === true) {
    const kind = cause.slice('budget-'.length);
    return fail({
      code: 'INVALID_PARAMS',
      message: `session budget exhausted (${kind}) after ${task.tokensOut} tokens`,
      retriable: false,
    });
  }
  if (cause === 'host-lost')
    return fail({
      code: 'WORKER_RESET',
      message: `the host of replica ${task.replicaId ?? '?'} was lost mid-task`,
      retriable: true,
    });
  if (cause === 'drain')
    return fail({
      code: 'POOL_UNAVAILABLE',
      message: `pool '${pool.id}' was drained or reloaded before the task finished`,
      retriable: true,
    });
  if (cause === 'shutdown')
    return fail({ code: 'POOL_UNAVAILABLE', message: 'the orchestrator is shutting down', retriable: true });
  if (err instanceof OrchError)
    return fail({ code: err.code, message: err.message, retriable: err.retriable });
  logger.error({ err, job_id: task.spec.taskId }, 'unexpected dispatch failure');
  return fail({ code: 'INTERNAL', message: 'internal error', retriable: false });
}

/** The terminal error of a queued task whose deadline passed before any replica could start it. */
export function replicaExhausted(pool: PoolRuntime, task: TaskRecord, why = 'before its deadline'): Failed {
  return {
    kind: 'failed',
    error: {
      code: 'REPLICA_EXHAUSTED',
      message: `no replica of pool '${pool.id}' could start the task ${why} (${task.spec.deadlineMs} ms)`,
      engine: pool.config.engine,
      retriable: true,
    },
  };
}
