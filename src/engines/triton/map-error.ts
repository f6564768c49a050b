import { OrchError } from '../../errors/orch-error.js';
import type { ErrorResponse } from './wire-types.js';

const opts = { engine: 'triton' as const };

/**
 * The one place Triton failures become spec error codes. Triton reports most failures as 400
 * with `{"error": "..."}`, so the message decides: TRT-LLM's input-length errors →
 * INVALID_PARAMS; "not ready"/"unavailable" → POOL_UNREADY; CUDA out-of-memory → WORKER_RESET;
 * 503/429 → REPLICA_EXHAUSTED; anything else INTERNAL.
 */
export function mapTritonError(status: number, text: string): OrchError {
  let message = text.slice(0, 300);
  try {
    message = (JSON.parse(text) as ErrorResponse).error;
  } catch {
    // keep the raw text
  }
  return tritonFailure(message, status);
}

export function tritonFailure(message: string, status?: number): OrchError {
  if (/out of memory/i.test(message))
    return new OrchError('WORKER_RESET', `Triton inference failed: ${message}`, opts);
  if (/exceeds|too long|input length|max_tokens|invalid|is required/i.test(message))
    return new OrchError('INVALID_PARAMS', `Triton refused the request: ${message}`, opts);
  if (/not ready|unavailable|loading/i.test(message))
    return new OrchError('POOL_UNREADY', `Triton model not ready: ${message}`, opts);
  if (status === 503 || status === 429)
    return new OrchError('REPLICA_EXHAUSTED', `Triton refused new work: ${message}`, opts);
  return new OrchError(
    'INTERNAL',
    `Triton error${status === undefined ? '' : ` ${status}`}: ${message}`,
    opts,
  );
}
