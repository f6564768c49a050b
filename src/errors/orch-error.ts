import type { Engine, FullPolicy } from '../domain/types.js';
import { ERROR_CODES, type ErrorCode } from './codes.js';

export interface OrchErrorOptions {
  engine?: Engine;
  poolId?: string;
  retryAfterMs?: number;
  policyLabel?: FullPolicy;
  /** Extra response headers (e.g. X-Queue-Position) the HTTP layer adds to the envelope. */
  headers?: Record<string, string>;
  cause?: unknown;
  /** Overrides the code's default, e.g. a CONFLICT that waiting cannot resolve. */
  retriable?: boolean;
}

/** The single error type of llama-orch. The HTTP error handler is the only place that renders it. */
export class OrchError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly retriable: boolean;
  readonly engine: Engine | undefined;
  readonly poolId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly policyLabel: FullPolicy | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, options: OrchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrchError';
    this.code = code;
    this.httpStatus = ERROR_CODES[code].httpStatus;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    this.engine = options.engine;
    this.poolId = options.poolId;
    this.retryAfterMs = options.retryAfterMs;
    this.policyLabel = options.policyLabel;
    this.headers = options.headers ?? {};
  }

  /** The wire envelope `{code, message, engine?, pool_id?, retriable?, retry_after_ms?, policy_label?}`. */
  toEnvelope(): ErrorEnvelope {
    const env: ErrorEnvelope = { code: this.code, message: this.message, retriable: this.retriable };
    if (this.engine !== undefined) env.engine = this.engine;
    if (this.poolId !== undefined) env.pool_id = this.poolId;
    if (this.retryAfterMs !== undefined) env.retry_after_ms = this.retryAfterMs;
    if (this.policyLabel !== undefined) env.policy_label = this.policyLabel;
    return env;
  }
}

export interface ErrorEnvelope {
  code: ErrorCode;
  message: string;
  engine?: Engine;
  pool_id?: string;
  retriable?: boolean;
  retry_after_ms?: number;
  policy_label?: FullPolicy;
}

export const isOrchError = (e: unknown): e is OrchError => e instanceof OrchError;
