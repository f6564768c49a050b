/**
 * OpenTelemetry traces of tasks (SPEC §12): one `llorch.task` span per accepted task, from
 * admission to its terminal event, with children for queue wait, dispatch (engine prefill up
 * to the first token) and the stream; refused admissions get an `llorch.admission` span. Spans
 * are written when the task ends, from the timestamps the lifecycle records, so tracing adds
 * nothing to the hot path and nothing at all when it is off.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace, type Tracer, type TracerProvider } from '@opentelemetry/api';

/** What a finished task tells the tracer. Times are epoch milliseconds. */
export interface TracedTask {
  readonly taskId: string;
  readonly correlationId: string;
  readonly tenant: string;
  readonly poolId: string;
  readonly engine: string;
  readonly modelId: string;
  readonly priority: string;
  readonly replicaId: string | undefined;
  readonly acceptedAtMs: number;
  readonly dispatchedAtMs: number | undefined;
  readonly firstTokenAtMs: number | undefined;
  readonly finishedAtMs: number;
  readonly outcome: 'completed' | 'canceled' | 'failed';
  readonly errorCode: string | undefined;
  readonly tokensIn: number;
  readonly tokensOut: number;
}

export class TaskTracer {
  readonly #tracer: Tracer;

  constructor(provider: TracerProvider = trace.getTracerProvider()) {
    this.#tracer = provider.getTracer('llama-orch');
  }

  finished(t: TracedTask): void {
    const attributes = {
      'llorch.task_id': t.taskId,
      'llorch.correlation_id': t.correlationId,
      'llorch.tenant': t.tenant,
      'llorch.pool_id': t.poolId,
      'llorch.engine': t.engine,
      'llorch.model_id': t.modelId,
      'llorch.priority': t.priority,
      ...(t.replicaId === undefined ? {} : { 'llorch.replica_id': t.replicaId }),
    };
    const root = this.#tracer.startSpan('llorch.task', { startTime: t.acceptedAtMs, attributes });
    // Children hang off the root explicitly: no global context manager is needed.
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    const child = (name: string, start: number | undefined, end: number | undefined): void => {
      if (start === undefined || end === undefined) return;
      this.#tracer.startSpan(name, { startTime: start, attributes }, ctx).end(end);
    };
    const queueEnd = t.dispatchedAtMs ?? t.finishedAtMs;
    child('llorch.queue_wait', t.acceptedAtMs, queueEnd);
    child(
      'llorch.dispatch',
      t.dispatchedAtMs,
      t.firstTokenAtMs ?? (t.dispatchedAtMs === undefined ? undefined : t.finishedAtMs),
    );
    child('llorch.stream', t.firstTokenAtMs, t.firstTokenAtMs === undefined ? undefined : t.finishedAtMs);
    root.setAttributes({
      'llorch.outcome': t.outcome,
      'llorch.tokens_in': t.tokensIn,
      'llorch.tokens_out': t.tokensOut,
      ...(t.errorCode === undefined ? {} : { 'llorch.error_code': t.errorCode }),
    });
    if (t.outcome === 'failed')
      root.setStatus({ code: SpanStatusCode.ERROR, message: t.errorCode ?? 'failed' });
    root.end(t.finishedAtMs);
  }

  /** A refused admission: a short span with the typed error. */
  rejected(r: {
    correlationId: string;
    tenant: string;
    taskId: string;
    code: string;
    atMs: number;
    poolId?: string | undefined;
  }): void {
    const span = this.#tracer.startSpan('llorch.admission', {
      startTime: r.atMs,
      attributes: {
        'llorch.task_id': r.taskId,
        'llorch.correlation_id': r.correlationId,
        'llorch.tenant': r.tenant,
        'llorch.error_code': r.code,
        ...(r.poolId === undefined ? {} : { 'llorch.pool_id': r.poolId }),
      },
    });
    span.setStatus({ code: SpanStatusCode.ERROR, message: r.code });
    span.end(r.atMs);
  }
}
