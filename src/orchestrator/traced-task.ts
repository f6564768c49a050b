/** What a finished task tells the tracer (SPEC §12), read from its record. */
import type { TracedTask } from '../tracing/task-tracer.js';
import { outcomeOf } from './fleet-gauges.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskView } from './task-record.js';

export function tracedTask(task: TaskView, pool: PoolRuntime, nowMs: number): TracedTask {
  const s = task.state;
  return {
    taskId: task.spec.taskId,
    correlationId: task.spec.correlationId,
    tenant: task.spec.tenant,
    poolId: pool.id,
    engine: pool.config.engine,
    modelId: pool.config.model.id,
    priority: task.spec.priority,
    replicaId: task.replicaId,
    acceptedAtMs: task.spec.acceptedAtMs,
    dispatchedAtMs: task.dispatchedAtMs,
    firstTokenAtMs: task.firstTokenAtMs,
    finishedAtMs: task.finishedAtMs ?? nowMs,
    outcome: outcomeOf(task),
    errorCode: s.kind === 'failed' || s.kind === 'evicted' ? s.code : undefined,
    tokensIn: task.tokensIn,
    tokensOut: task.tokensOut,
  };
}
