import { OrchError } from '../../errors/orch-error.js';
import type { ErrorBody } from './wire-types.js';

const opts = { engine: 'vllm' as const };

/** The message of a vLLM error body, either shape. */
export function errorMessage(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Partial<ErrorBody> & { error?: unknown; message?: unknown };
  if (
    typeof b.error === 'object' &&
    b.error !== null &&
    typeof (b.error as { message?: unknown }).message === 'string'
  )
    return (b.error as { message: string }).message;
  if (typeof b.message === 'string') return b.message;
  return typeof b.error === 'string' ? b.error : undefined;
}

/**
 * The one place vLLM failures become spec error codes: 400 (ctx overflow, bad parameters) →
 * INVALID_PARAMS; 503 while loading → POOL_UNREADY, 503 otherwise (waiting queue full) →
 * REPLICA_EXHAUSTED; CUDA out-of-memory → WORKER_RESET; anything else INTERNAL.
 */
export function mapVllmError(status: number, text: string): OrchError {
  let message = text.slice(0, 300);
  try {
    message = errorMessage(JSON.parse(text)) ?? message;
  } catch {
    // keep the raw text
  }
  if (status === 400 || status === 422)
    return new OrchError('INVALID_PARAMS', `vLLM refused the request: ${message}`, opts);
  if (status === 401 || status === 403)
    return new OrchError(
      'INTERNAL',
      `vLLM rejected the pool's API key (check launch.api_key): ${message}`,
      opts,
    );
  if (status === 503 || status === 429) {
    if (/\bloading\b/i.test(message))
      return new OrchError('POOL_UNREADY', `vLLM is loading: ${message}`, opts);
    return new OrchError('REPLICA_EXHAUSTED', `vLLM refused new work: ${message}`, opts);
  }
  return vllmFailure(message, `vLLM answered ${status}`);
}

export function vllmFailure(message: string, prefix = 'vLLM error'): OrchError {
  if (/out of memory/i.test(message)) return new OrchError('WORKER_RESET', `${prefix}: ${message}`, opts);
  return new OrchError('INTERNAL', `${prefix}: ${message}`, opts);
}
