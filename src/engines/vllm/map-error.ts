import { OrchError } from '../../errors/orch-error.js';
import type { ErrorInfo } from './wire-types.js';

const opts = { engine: 'vllm' as const };

/**
 * `EngineDeadError`'s message (`vllm/v1/engine/exceptions.py`): the engine core process died (a
 * CUDA error or out-of-memory among the causes); vLLM's API server shuts down after it.
 */
const ENGINE_DEAD = /EngineCore encountered an issue|engine (?:loop|core) is dead|AsyncEngineDeadError/i;

/** The error object of a vLLM error body, any of its shapes (see `ErrorBody`). */
function errorInfo(body: unknown): Partial<ErrorInfo> | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as { error?: unknown; message?: unknown };
  if (typeof b.error === 'object' && b.error !== null) return b.error;
  if (typeof b.error === 'string') return { message: b.error };
  if (typeof b.message === 'string') return body;
  return undefined;
}

/** The message of a vLLM error body, either shape. */
export function errorMessage(body: unknown): string | undefined {
  const m = errorInfo(body)?.message;
  return typeof m === 'string' ? m : undefined;
}

/**
 * The one place vLLM failures become spec error codes: 400/422 (ctx overflow, bad parameters) →
 * INVALID_PARAMS; 503 (vLLM's only one is the elastic-EP scaling middleware's) →
 * REPLICA_EXHAUSTED, or POOL_UNREADY where a proxy in front says the model is loading; a dead
 * engine core or CUDA out-of-memory → WORKER_RESET; anything else INTERNAL.
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
  if (ENGINE_DEAD.test(message))
    return new OrchError('WORKER_RESET', `${prefix}: the vLLM engine core died: ${message}`, opts);
  if (/out of memory/i.test(message)) return new OrchError('WORKER_RESET', `${prefix}: ${message}`, opts);
  return new OrchError('INTERNAL', `${prefix}: ${message}`, opts);
}

/**
 * An error event in a vLLM stream, of any release line: a dead engine or out-of-memory →
 * WORKER_RESET (first: from v0.7.0 until #30134 every stream exception was typed 400, a dead
 * engine too), else `code` 400 (a validation error met after the stream started, e.g. the
 * engine's own prompt check) → INVALID_PARAMS, anything else INTERNAL.
 */
export function vllmStreamFailure(body: unknown): OrchError {
  const info = errorInfo(body);
  const message = typeof info?.message === 'string' ? info.message : 'unknown error';
  const failure = vllmFailure(message);
  if (failure.code === 'WORKER_RESET' || info?.code !== 400) return failure;
  return new OrchError('INVALID_PARAMS', `vLLM refused the request: ${message}`, opts);
}
