/** What the client throws for a non-2xx answer. */
import type { ErrorEnvelope } from './types.js';

/** A non-2xx answer, with the server's error envelope and the request's correlation id. */
export class OrchHttpError extends Error {
  readonly status: number;
  /** The error envelope (SPEC §2.5); undefined when the body was not one. */
  readonly envelope: ErrorEnvelope | undefined;
  /** `X-Correlation-Id` of the failed request, for matching server logs. */
  readonly correlationId: string | undefined;
  /** Attempts made, retries included. */
  readonly attempts: number;

  constructor(status: number, envelope: ErrorEnvelope | undefined, correlationId?: string, attempts = 1) {
    super(envelope ? `${status} ${envelope.code}: ${envelope.message}` : `HTTP ${status}`);
    this.name = 'OrchHttpError';
    this.status = status;
    this.envelope = envelope;
    this.correlationId = correlationId;
    this.attempts = attempts;
  }

  /** The server's error code, when it sent the envelope. */
  get code(): string | undefined {
    return this.envelope?.code;
  }

  /** True when retrying the same request later may succeed (the envelope's `retriable`). */
  get retriable(): boolean {
    return this.envelope?.retriable === true;
  }
}

/** A task stream that ended, after every allowed reconnect, without `end` or `error`. */
export class OrchStreamError extends Error {
  constructor(
    message: string,
    readonly lastEventId: number | undefined,
  ) {
    super(message);
    this.name = 'OrchStreamError';
  }
}
