import type { Engine } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Transport failures of any engine: the process died, restarted or closed the connection
 * mid-stream. These are `WORKER_RESET` (the task may be retried elsewhere); anything else is a bug.
 */
export function mapTransportError(engine: Engine, err: unknown): OrchError {
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
      `connection to the ${engine} engine lost (${code || cause || String(err)})`,
      {
        engine,
        cause: err,
      },
    );
  }
  return new OrchError('INTERNAL', `${engine} engine request failed: ${String(err)}`, { engine, cause: err });
}

/** The error a stream that stopped without its final frame ends with. */
export const streamClosedEarly = (engine: Engine): OrchError =>
  mapTransportError(
    engine,
    Object.assign(new Error('stream closed before its final frame'), { code: 'UND_ERR_SOCKET' }),
  );
