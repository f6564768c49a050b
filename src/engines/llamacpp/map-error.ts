import { OrchError } from '../../errors/orch-error.js';
import type { ErrorBody } from './wire-types.js';

/**
 * The one place llama-server failures become spec error codes (transport failures: see
 * `../transport-error.ts`). llama-server answers 503 while loading, 400 for requests it refuses
 * (ctx overflow included), and 500 for failures, OOM included.
 */
export function mapHttpError(status: number, body: string): OrchError {
  let message = body.slice(0, 300);
  try {
    message = (JSON.parse(body) as ErrorBody).error.message;
  } catch {
    // keep the raw text
  }
  const opts = { engine: 'llamacpp' as const };
  if (status === 503) return new OrchError('POOL_UNREADY', `llama-server is loading: ${message}`, opts);
  if (status === 400)
    return new OrchError('INVALID_PARAMS', `llama-server refused the request: ${message}`, opts);
  // `{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}`
  if (status === 401)
    return new OrchError('INTERNAL', `llama-server rejected the pool's API key: ${message}`, opts);
  return mapEngineFailure(message, `llama-server answered ${status}`);
}

/** Errors reported inside a stream (or a 5xx body): out-of-memory resets the worker. */
export function mapEngineFailure(message: string, prefix = 'llama-server error'): OrchError {
  if (/out of memory|\boom\b|failed to allocate/i.test(message))
    return new OrchError('WORKER_RESET', `${prefix}: ${message}`, { engine: 'llamacpp' });
  return new OrchError('INTERNAL', `${prefix}: ${message}`, { engine: 'llamacpp' });
}
