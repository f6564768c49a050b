/**
 * When and how long to wait before retrying a call. Only answers the server marks `retriable`
 * (the error envelope's flag; SPEC §2.5) are retried, after the backoff the server asked for
 * (`X-Backoff-Ms`, the envelope's `retry_after_ms`, `Retry-After`), within a budget on total wait.
 */
import type { ErrorEnvelope } from './types.js';

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 disables retries). */
  readonly maxAttempts?: number;
  /** The most time spent waiting between attempts, summed (default 30 000 ms). */
  readonly budgetMs?: number;
  /** Wait used when the server gave no hint, doubled per attempt (default 100 ms). */
  readonly baseDelayMs?: number;
}

export interface ResolvedRetry {
  readonly maxAttempts: number;
  readonly budgetMs: number;
  readonly baseDelayMs: number;
}

export function resolveRetry(o: RetryOptions | undefined): ResolvedRetry {
  return {
    maxAttempts: Math.max(1, o?.maxAttempts ?? 4),
    budgetMs: Math.max(0, o?.budgetMs ?? 30_000),
    baseDelayMs: Math.max(1, o?.baseDelayMs ?? 100),
  };
}

/** The server's requested pause in ms, from the most precise hint present; undefined if none. */
export function serverBackoffMs(headers: Headers, envelope: ErrorEnvelope | undefined): number | undefined {
  const xb = Number(headers.get('x-backoff-ms'));
  if (headers.has('x-backoff-ms') && Number.isFinite(xb) && xb >= 0) return xb;
  if (envelope?.retry_after_ms !== undefined) return envelope.retry_after_ms;
  const ra = headers.get('retry-after');
  if (ra !== null) {
    const secs = Number(ra);
    if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
    const at = Date.parse(ra);
    if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  }
  return undefined;
}

/** Exponential fallback with full jitter, for answers that carry no hint. */
export function fallbackDelayMs(policy: ResolvedRetry, attempt: number): number {
  const cap = policy.baseDelayMs * 2 ** Math.min(attempt - 1, 10);
  return cap / 2 + Math.random() * (cap / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
