import { OrchError } from '../../errors/orch-error.js';
import type { ErrorBody, ErrorDetail } from './wire-types.js';

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

/**
 * Errors reported inside a stream (or a 5xx body). Out-of-memory resets the worker; so does a
 * KV cache with no free cell left mid-decode ("Context size has been exceeded." at the pinned
 * tag, "Input prompt is too big compared to KV size" in older builds): llama-server fails every
 * running request and clears their slots' KV, so the work is lost on this replica but may run
 * on another.
 */
export function mapEngineFailure(message: string, prefix = 'llama-server error'): OrchError {
  if (
    /out of memory|\boom\b|failed to allocate|context size has been exceeded|too big compared to kv size/i.test(
      message,
    )
  )
    return new OrchError('WORKER_RESET', `${prefix}: ${message}`, { engine: 'llamacpp' });
  return new OrchError('INTERNAL', `${prefix}: ${message}`, { engine: 'llamacpp' });
}

/**
 * An error inside a `/completion` stream, in either framing llama-server has used: the pinned
 * build sends `data: {"error": {code, message, type}}` (`format_oai_sse(json {{"error", …}})`,
 * `tools/server/server-context.cpp`); earlier builds sent an SSE field of their own,
 * `error: {code, message, type}` (`server_sent_event(sink, "error", error_data)`,
 * ggml-org/llama.cpp 03d4bccb `examples/server/server.cpp`, with `server_sent_event` in
 * `examples/server/utils.hpp`). `detail` is the parsed object, or the raw text when it was not
 * JSON. The `type` says whose fault it is (`format_error_response`, `server-common.cpp`).
 */
export function mapStreamError(detail: Partial<ErrorDetail> | string): OrchError {
  const d = typeof detail === 'string' ? { message: detail } : detail;
  const message = typeof d.message === 'string' ? d.message : JSON.stringify(detail).slice(0, 300);
  const opts = { engine: 'llamacpp' as const };
  switch (d.type) {
    case 'invalid_request_error':
    case 'exceed_context_size_error':
      return new OrchError('INVALID_PARAMS', `llama-server refused the request: ${message}`, opts);
    case 'unavailable_error':
      return new OrchError('POOL_UNREADY', `llama-server is unavailable: ${message}`, opts);
    case undefined:
    default:
      return mapEngineFailure(message);
  }
}
