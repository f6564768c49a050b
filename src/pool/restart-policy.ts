/**
 * Restarts with exponential backoff and jitter, behind a circuit breaker that stops restart
 * storms (SPEC §5): `maxFailures` failures within `windowMs` open the breaker for `cooldownMs`;
 * then one attempt is allowed (half-open), and a replica that reaches Ready closes it again.
 * Pure: the clock and the random source are passed in.
 */
export interface RestartPolicyOptions {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  /** Time Ready after which a replica counts as recovered (failures before it are forgotten). */
  readonly stableMs?: number;
}

export type RestartDecision =
  | { readonly action: 'restart'; readonly delayMs: number }
  | { readonly action: 'open'; readonly delayMs: number; readonly failures: number };

export class RestartPolicy {
  readonly #o: RestartPolicyOptions;
  #failures: number[] = [];
  #consecutive = 0;
  #open = false;
  #readySince: number | undefined;

  constructor(opts: RestartPolicyOptions) {
    this.#o = opts;
  }

  get open(): boolean {
    return this.#open;
  }

  get consecutiveFailures(): number {
    return this.#consecutive;
  }

  onFailure(now: number, random: () => number = Math.random): RestartDecision {
    // A replica that came up and stayed up has recovered; one that falls over soon after Ready is
    // still in the same crash loop.
    if (this.#readySince !== undefined && now - this.#readySince >= (this.#o.stableMs ?? 10_000)) {
      this.#failures = [];
      this.#consecutive = 0;
    }
    this.#readySince = undefined;
    this.#failures = this.#failures.filter((t) => now - t < this.#o.windowMs);
    this.#failures.push(now);
    this.#consecutive++;
    if (this.#open || this.#failures.length >= this.#o.maxFailures) {
      this.#open = true;
      return { action: 'open', delayMs: this.#o.cooldownMs, failures: this.#failures.length };
    }
    const base = Math.min(this.#o.maxMs, this.#o.baseMs * 2 ** (this.#consecutive - 1));
    return { action: 'restart', delayMs: Math.round(base / 2 + random() * (base / 2)) };
  }

  /** The replica passed its self-test: the breaker closes; the backoff resets once it stays up. */
  onReady(now: number): void {
    this.#open = false;
    this.#readySince = now;
  }
}
