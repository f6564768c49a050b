import { OrchError } from '../../errors/orch-error.js';
import type { ErrorBody } from './wire-types.js';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The one place llama-server failures become spec error codes. */
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
  return new OrchError('INTERNAL', `llama-server answered ${status}: ${message}`, opts);
}

/** Transport failures: the process died, restarted or closed the connection mid-stream. */
export function mapTransportError(err: unknown): OrchError {
  if (err instanceof OrchError) return err;
  const code = (err as { code?: string }).code ?? '';
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? '';
  if (
    CONNECTION_CODES.has(code) ||
    CONNECTION_CODES.has(cause) ||
    /socket|closed|terminated/i.test(String(err))
  ) {
    return new OrchError(
      'WORKER_RESET',
      `connection to llama-server lost (${code || cause || String(err)})`,
      {
        engine: 'llamacpp',
        cause: err,
      },
    );
  }
  return new OrchError('INTERNAL', `llama-server request failed: ${String(err)}`, {
    engine: 'llamacpp',
    cause: err,
  });
}
