/** A token bucket (rate per second, burst size) on an injected clock: the `rps` quota (SPEC §3.3). */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = nowMs;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#ratePerMs);
      this.#at = now;
    }
  }

  /** Takes one token; when empty, says how long until one is available. */
  take(now: number): { ok: true } | { ok: false; retryAfterMs: number } {
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs)) };
  }

  /** Gives back a token taken for a request that was refused later (no charge for refusals). */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }
}
