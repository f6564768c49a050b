/**
 * Learns how fast a pool drains its queue, from observed task completions (EWMA), so backoff
 * hints and predicted start times come from the real queue state, not constants (SPEC §2.6).
 */
export interface DrainEstimatorOptions {
  /** Weight of the newest sample. */
  readonly alpha: number;
  /** Assumed service time before anything was measured. */
  readonly initialServiceMs: number;
}

export class DrainEstimator {
  readonly #alpha: number;
  #serviceMs: number;
  #decodeTokensPerMs: number | undefined;
  #samples = 0;

  constructor(opts: DrainEstimatorOptions = { alpha: 0.2, initialServiceMs: 1000 }) {
    this.#alpha = opts.alpha;
    this.#serviceMs = opts.initialServiceMs;
  }

  get samples(): number {
    return this.#samples;
  }

  /** Mean time a task holds a slot. */
  get serviceMs(): number {
    return this.#serviceMs;
  }

  get decodeTokensPerMs(): number | undefined {
    return this.#decodeTokensPerMs;
  }

  observe(serviceMs: number, tokensOut: number, decodeMs: number): void {
    const a = this.#samples === 0 ? 1 : this.#alpha;
    this.#serviceMs = a * Math.max(1, serviceMs) + (1 - a) * this.#serviceMs;
    if (tokensOut > 0 && decodeMs > 0) {
      const rate = tokensOut / decodeMs;
      this.#decodeTokensPerMs =
        this.#decodeTokensPerMs === undefined ? rate : a * rate + (1 - a) * this.#decodeTokensPerMs;
    }
    this.#samples++;
  }

  /** Tasks per millisecond the pool completes with `slots` Ready slots. */
  drainRatePerMs(slots: number): number {
    return Math.max(slots, 0) / this.#serviceMs;
  }

  /** Expected wait before a task with `ahead` tasks in front of it gets a slot. */
  predictStartMs(ahead: number, freeSlots: number, readySlots: number): number {
    if (freeSlots > ahead) return 0;
    const rate = this.drainRatePerMs(readySlots);
    if (rate <= 0) return Number.POSITIVE_INFINITY;
    return Math.ceil((ahead + 1 - freeSlots) / rate);
  }

  /** Expected time until one queue place frees up: the backoff a refused client should wait. */
  backoffMs(readySlots: number): number {
    const rate = this.drainRatePerMs(readySlots);
    if (rate <= 0) return Math.ceil(this.#serviceMs);
    return Math.max(1, Math.ceil(1 / rate));
  }

  /** Expected decode time of `tokens` output tokens. */
  predictDecodeMs(tokens: number): number | undefined {
    return this.#decodeTokensPerMs === undefined ? undefined : Math.ceil(tokens / this.#decodeTokensPerMs);
  }
}
