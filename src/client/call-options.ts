import type { RetryOptions } from './retry-policy.js';

/** Per-call options of every client method. */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  readonly correlationId?: string | undefined;
  readonly retry?: RetryOptions | undefined;
}
