/**
 * Online estimates of each replica's prefill and decode rates (SPEC §3.4), and predictions built
 * on them: when a task will start given the queue ahead of it and the replicas' busy slots, and
 * how long it will run. Pure: observations and the clock come from the caller.
 */
export interface RateSample {
  readonly replicaId: string;
  /** Uncached prompt tokens prefilled, and the time from dispatch to the first token. */
  readonly prefillTokens: number;
  readonly prefillMs: number;
  /** Tokens decoded after the first, and the time they took. */
  readonly decodeTokens: number;
  readonly decodeMs: number;
}

export interface SlotState {
  /** Milliseconds until each busy slot frees (one entry per busy slot). */
  readonly busyRemainingMs: readonly number[];
  /** Slots free now. */
  readonly freeSlots: number;
}

interface Rates {
  prefillMsPerToken: number | undefined;
  decodeMsPerToken: number | undefined;
}

/** Past this many tasks ahead, the start time is extrapolated instead of simulated. */
const SIMULATE_AT_MOST = 2_048;

export class ServicePredictor {
  readonly #alpha: number;
  readonly #rates = new Map<string, Rates>();
  /** Overhead per task beyond prefill and decode (HTTP, scheduling), learned too. */
  #overheadMs = 0;
  /** Slot time per scheduling-cost token (whole task, dispatch to end), for queue predictions. */
  #msPerCost: number | undefined;

  constructor(alpha = 0.2) {
    this.#alpha = alpha;
  }

  observe(s: RateSample): void {
    const r = this.#rates.get(s.replicaId) ?? { prefillMsPerToken: undefined, decodeMsPerToken: undefined };
    const mix = (old: number | undefined, v: number) =>
      old === undefined ? v : this.#alpha * v + (1 - this.#alpha) * old;
    if (s.prefillTokens > 0 && s.prefillMs >= 0)
      r.prefillMsPerToken = mix(r.prefillMsPerToken, s.prefillMs / s.prefillTokens);
    else if (s.prefillMs >= 0) this.#overheadMs = mix(this.#overheadMs, s.prefillMs);
    if (s.decodeTokens > 0 && s.decodeMs >= 0)
      r.decodeMsPerToken = mix(r.decodeMsPerToken, s.decodeMs / s.decodeTokens);
    this.#rates.set(s.replicaId, r);
  }

  /** A task held a slot for `ms` and cost `cost` tokens (uncached prompt + output). */
  observeService(cost: number, ms: number): void {
    if (cost <= 0 || ms < 0) return;
    const v = ms / cost;
    this.#msPerCost =
      this.#msPerCost === undefined ? v : this.#alpha * v + (1 - this.#alpha) * this.#msPerCost;
  }

  /** Expected slot time of a task of `cost` tokens; undefined before anything was measured. */
  serviceMsForCost(cost: number): number | undefined {
    return this.#msPerCost === undefined ? undefined : this.#msPerCost * Math.max(1, cost);
  }

  /** Rates of one replica, or the mean over measured replicas when it has none yet. */
  rates(replicaId?: string): { prefillMsPerToken: number; decodeMsPerToken: number } | undefined {
    const own = replicaId === undefined ? undefined : this.#rates.get(replicaId);
    const all = [...this.#rates.values()];
    const mean = (pick: (r: Rates) => number | undefined) => {
      const v = all.map(pick).filter((x): x is number => x !== undefined);
      return v.length === 0 ? undefined : v.reduce((a, b) => a + b, 0) / v.length;
    };
    const prefill = own?.prefillMsPerToken ?? mean((r) => r.prefillMsPerToken);
    const decode = own?.decodeMsPerToken ?? mean((r) => r.decodeMsPerToken);
    if (decode === undefined) return undefined;
    return { prefillMsPerToken: prefill ?? 0, decodeMsPerToken: decode };
  }

  /** Expected run time of a task: prefill of its uncached prompt plus decode of its output. */
  serviceMs(promptTokens: number, outputTokens: number, replicaId?: string): number | undefined {
    const r = this.rates(replicaId);
    if (!r) return undefined;
    return r.prefillMsPerToken * promptTokens + r.decodeMsPerToken * Math.max(0, outputTokens - 1);
  }

  /**
   * When a task with `ahead` tasks (each taking `meanServiceMs`) in front of it gets a slot,
   * given the slots' state: list scheduling on the earliest-free slot.
   */
  predictStartMs(ahead: number, slots: SlotState, meanServiceMs: number): number {
    const free: number[] = [
      ...Array.from({ length: slots.freeSlots }, () => 0),
      ...slots.busyRemainingMs,
    ].sort((a, b) => a - b);
    if (free.length === 0) return Number.POSITIVE_INFINITY;
    const simulated = Math.min(ahead, SIMULATE_AT_MOST);
    for (let i = 0; i < simulated; i++) {
      const t = free.shift() ?? 0;
      insertSorted(free, t + meanServiceMs + this.#overheadMs);
    }
    const start = free[0] ?? 0;
    return start + ((ahead - simulated) * (meanServiceMs + this.#overheadMs)) / free.length;
  }
}

function insertSorted(xs: number[], v: number): void {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] ?? 0) <= v) lo = mid + 1;
    else hi = mid;
  }
  xs.splice(lo, 0, v);
}
