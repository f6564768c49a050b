/** The only place error envelopes are rendered (SPEC §2.5, ARCHITECTURE "Errors"). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OrchError } from '../errors/orch-error.js';
import type { Logger } from '../util/logger.js';
import type { Redactor } from '../util/redact.js';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
}

/** Fastify/Node failures before our handlers ran, mapped to typed errors. */
export function toOrchError(err: unknown): OrchError {
  if (err instanceof OrchError) return err;
  const e = (err ?? {}) as FastifyLikeError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OrchError('PAYLOAD_TOO_LARGE', 'request body exceeds the configured limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OrchError('INVALID_PARAMS', 'content-type must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OrchError('INVALID_PARAMS', 'request body is empty; a JSON object is required');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new OrchError('INVALID_PARAMS', 'request body is not valid JSON');
    case undefined:
    default:
      break;
  }
  if (err instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message ?? ''))) {
    return new OrchError('INVALID_PARAMS', 'request body is not valid JSON');
  }
  if (e.statusCode === 413)
    return new OrchError('PAYLOAD_TOO_LARGE', 'request body exceeds the configured limit');
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return new OrchError('INVALID_PARAMS', e.message ?? 'bad request');
  }
  return new OrchError('INTERNAL', 'internal error', { cause: err });
}

/** Headers every refusal carries: backoff hints on 429/503 (SPEC §2.6) plus the error's own. */
export function errorHeaders(err: OrchError): Record<string, string> {
  const headers: Record<string, string> = { ...err.headers };
  if (err.retryAfterMs !== undefined && (err.httpStatus === 429 || err.httpStatus === 503)) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
    headers['X-Backoff-Ms'] = String(Math.max(1, Math.ceil(err.retryAfterMs)));
  }
  return headers;
}

/** Engine faults that are a task's terminal error on its stream, but never an admission answer. */
const STREAM_FAULTS: ReadonlySet<string> = new Set(['WORKER_RESET', 'DECODE_TIMEOUT']);

/**
 * Admission refuses with 4xx or a retriable 503 (SPEC §2.5): an engine that died while the task
 * was being admitted (its tokenizer, its placement) means "no replica now", not a 502/504 the
 * client would read as a failed task.
 */
export function admissionAnswer(
  err: OrchError,
  req: Pick<FastifyRequest, 'method' | 'routeOptions'>,
): OrchError {
  if (req.method !== 'POST' || req.routeOptions.url !== '/v1/tasks' || !STREAM_FAULTS.has(err.code))
    return err;
  return new OrchError('POOL_UNAVAILABLE', `no replica could take the task now: ${err.message}`, {
    ...(err.engine === undefined ? {} : { engine: err.engine }),
    ...(err.poolId === undefined ? {} : { poolId: err.poolId }),
    retryAfterMs: 1_000,
    cause: err,
  });
}

export function makeErrorHandler(logger: Logger, redactor: Redactor) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    const orch = admissionAnswer(toOrchError(err), req);
    if (orch.code === 'INTERNAL') {
      // Log the cause for operators; the client sees no stack or internals.
      logger.error({ err, correlation_id: req.correlationId, url: req.url }, 'internal error');
    }
    // A message may quote client input (an id, a ref): secrets in it never go back out.
    const envelope = orch.toEnvelope();
    envelope.message = redactor.scrub(envelope.message);
    void reply.code(orch.httpStatus).headers(errorHeaders(orch)).send(envelope);
  };
}
