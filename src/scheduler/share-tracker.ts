/**
 * Observed service shares (SPEC §3.3 `admission_share{tenant,priority}`): an exponentially
 * weighted moving average over served tokens, so the share reflects the recent window of
 * `windowTokens` rather than all history.
 */
export class ShareTracker {
  readonly #windowTokens: number;
  readonly #served = new Map<string, number>();
  #total = 0;

  constructor(windowTokens: number) {
    this.#windowTokens = windowTokens;
  }

  /** Records `tokens` of service to `key`; older service decays by exp(-tokens / window). */
  serve(key: string, tokens: number): void {
    const decay = Math.exp(-Math.max(0, tokens) / this.#windowTokens);
    this.#total = 0;
    for (const [k, v] of this.#served) {
      const d = v * decay;
      if (d < 1e-9) this.#served.delete(k);
      else {
        this.#served.set(k, d);
        this.#total += d;
      }
    }
    const mine = (this.#served.get(key) ?? 0) + tokens;
    this.#served.set(key, mine);
    this.#total += tokens;
  }

  share(key: string): number {
    return this.#total <= 0 ? 0 : (this.#served.get(key) ?? 0) / this.#total;
  }

  keys(): IterableIterator<string> {
    return this.#served.keys();
  }
}
