import { OrchError } from '../../errors/orch-error.js';
import type { ErrorResponse } from './wire-types.js';

const opts = { engine: 'tgi' as const };

/**
 * The one place TGI failures become spec error codes, from its documented statuses and
 * `error_type`s: 422 `validation` → INVALID_PARAMS, 429 `overloaded` → REPLICA_EXHAUSTED,
 * 503 `unhealthy` → POOL_UNREADY, 424 `generation` (CUDA OOM included) → WORKER_RESET when the
 * shard ran out of memory, INTERNAL otherwise.
 */
export function mapTgiError(status: number, text: string): OrchError {
  let body: Partial<ErrorResponse> = { error: text.slice(0, 300) };
  try {
    body = JSON.parse(text) as ErrorResponse;
  } catch {
    // keep the raw text
  }
  return tgiFailure(body, status);
}

export function tgiFailure(body: Partial<ErrorResponse>, status?: number): OrchError {
  const message = body.error ?? 'unknown error';
  const type = body.error_type ?? '';
  // TGI's `--api-key` check answers a bare 401 without a body.
  if (status === 401) return new OrchError('INTERNAL', "TGI rejected the pool's API key", opts);
  if (type === 'validation' || status === 422)
    return new OrchError('INVALID_PARAMS', `TGI refused the request: ${message}`, opts);
  if (type === 'overloaded' || status === 429)
    return new OrchError('REPLICA_EXHAUSTED', `TGI is overloaded: ${message}`, opts);
  if (type === 'unhealthy' || status === 503)
    return new OrchError('POOL_UNREADY', `TGI is not healthy: ${message}`, opts);
  if (/out of memory/i.test(message))
    return new OrchError('WORKER_RESET', `TGI generation failed: ${message}`, opts);
  return new OrchError('INTERNAL', `TGI error${status === undefined ? '' : ` ${status}`}: ${message}`, opts);
}
