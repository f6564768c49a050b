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

/** One slot as start predictions see it: when it frees, and how fast its replica serves. */
export interface Slot {
  /** Milliseconds until the slot is free (0: free now). */
  readonly readyInMs: number;
  /** Slot time per scheduling-cost token on this slot's replica. */
  readonly msPerCost: number;
}

/**
 * A running task's stream so far, for a provisional pace before its replica completed anything.
 * The counters are read at prediction time (the dispatcher's token loop copies nothing).
 */
export interface RunProgress {
  /** When this run got its slot. */
  readonly startedAtMs: number;
  /** Scheduling cost of the task in tokens (uncached prompt + expected output). */
  readonly cost: number;
  /** Output tokens this run is expected to stream: `expected_tokens`, else `max_tokens`. */
  readonly expectedTokens: number;
  /** When this run's first token came; undefined before it. */
  readonly firstTokenAtMs: number | undefined;
  /** Tokens this run streamed so far. */
  readonly tokens: number;
}

/** Tokens a run must have streamed before its pace counts: one gap between tokens is noise. */
const PACE_AFTER_TOKENS = 3;

/**
 * Slot time per cost token a running task is heading for, projected from its own stream: time to
 * its first token, plus its inter-token pace over the tokens it is still expected to stream.
 * Undefined until it streamed a few tokens.
 */
export function projectedMsPerCost(p: RunProgress, nowMs: number): number | undefined {
  if (p.firstTokenAtMs === undefined || p.tokens < PACE_AFTER_TOKENS || p.cost <= 0) return undefined;
  const ttftMs = Math.max(0, p.firstTokenAtMs - p.startedAtMs);
  // `now` lies somewhere between the last token and the next one: half a gap, on average.
  const perTokenMs = Math.max(0, nowMs - p.firstTokenAtMs) / (p.tokens - 0.5);
  const totalMs = ttftMs + perTokenMs * (Math.max(p.expectedTokens, p.tokens) - 1);
  return totalMs / p.cost;
}

/** The mean projected pace of a replica's running tasks; undefined when none has one yet. */
export function provisionalMsPerCost(running: readonly RunProgress[], nowMs: number): number | undefined {
  let sum = 0;
  let n = 0;
  for (const p of running) {
    const v = projectedMsPerCost(p, nowMs);
    if (v === undefined) continue;
    sum += v;
    n++;
  }
  return n > 0 ? sum / n : undefined;
}

/** A running mean over the first samples, then an EWMA: one early outlier does not stick. */
class Learned {
  value: number | undefined;
  n = 0;
  mix(v: number, alpha: number): void {
    this.n++;
    const a = Math.max(alpha, 1 / this.n);
    this.value = this.value === undefined ? v : a * v + (1 - a) * this.value;
  }
}

/** Past this many tasks ahead, the start time is extrapolated instead of simulated. */
const SIMULATE_AT_MOST = 2_048;

export class ServicePredictor {
  readonly #alpha: number;
  readonly #rates = new Map<string, Rates>();
  /** Overhead per task beyond prefill and decode (HTTP, scheduling), learned too. */
  #overheadMs = 0;
  /** Slot time per scheduling-cost token (whole task, dispatch to end), for queue predictions. */
  readonly #msPerCost = new Learned();
  /** The same, per replica, from its own completions: replicas need not be equally fast. */
  readonly #msPerCostOf = new Map<string, Learned>();

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
    // Dispatch to end over what it cost: the prefilled prompt, the first token and the rest.
    const cost = s.prefillTokens + s.decodeTokens + 1;
    const ms = s.prefillMs + s.decodeMs;
    if (s.prefillMs >= 0 && s.decodeMs >= 0) {
      const own = this.#msPerCostOf.get(s.replicaId) ?? new Learned();
      own.mix(ms / cost, this.#alpha);
      this.#msPerCostOf.set(s.replicaId, own);
    }
  }

  /** A task held a slot for `ms` and cost `cost` tokens (uncached prompt + output). */
  observeService(cost: number, ms: number): void {
    if (cost <= 0 || ms < 0) return;
    this.#msPerCost.mix(ms / cost, this.#alpha);
  }

  /** Expected slot time of a task of `cost` tokens; undefined before anything was measured. */
  serviceMsForCost(cost: number): number | undefined {
    const per = this.#msPerCost.value;
    return per === undefined ? undefined : per * Math.max(1, cost);
  }

  /** True once `replicaId` completed a task: its own pace is measured, not projected. */
  measured(replicaId: string): boolean {
    return this.#msPerCostOf.get(replicaId)?.value !== undefined;
  }

  /**
   * Slot time per cost token on `replicaId`: its own completions once it has some, else the pace
   * its running tasks are streaming at (`provisional`, by replica id: samples that its first
   * completions replace), else the mean of the replicas measured so far, else the pool-wide
   * figure, else the mean of the provisional paces; undefined with nothing to go on.
   */
  msPerCost(replicaId: string, provisional?: ReadonlyMap<string, number>): number | undefined {
    const own = this.#msPerCostOf.get(replicaId)?.value ?? provisional?.get(replicaId);
    if (own !== undefined) return own;
    let sum = 0;
    let n = 0;
    for (const l of this.#msPerCostOf.values())
      if (l.value !== undefined) {
        sum += l.value;
        n++;
      }
    if (n > 0) return sum / n;
    if (this.#msPerCost.value !== undefined) return this.#msPerCost.value;
    if (!provisional || provisional.size === 0) return undefined;
    for (const v of provisional.values()) sum += v;
    return sum / provisional.size;
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

  /** Overhead per task beyond prefill and decode, as learned. */
  get overheadMs(): number {
    return this.#overheadMs;
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

/**
 * When a task with `ahead` tasks in front of it gets a slot: list scheduling of the tasks ahead
 * (each of `meanCostAhead` tokens) on the earliest-free slot, each slot serving at its own
 * replica's pace; past a few rounds of every slot, the rest drain at the slots' summed throughput.
 */
export function predictStartOnSlots(
  ahead: number,
  slots: readonly Slot[],
  meanCostAhead: number,
  overheadMs = 0,
): number {
  if (slots.length === 0) return Number.POSITIVE_INFINITY;
  const free = [...slots].sort((a, b) => a.readyInMs - b.readyInMs);
  const cost = Math.max(1, meanCostAhead);
  // Once every slot has taken a few of the (equal) tasks ahead, the rest drain at a steady rate.
  const simulated = Math.min(ahead, SIMULATE_AT_MOST, Math.max(64, 4 * slots.length));
  for (let i = 0; i < simulated; i++) {
    const s = free.shift();
    if (!s) break;
    insertSlot(free, { readyInMs: s.readyInMs + s.msPerCost * cost + overheadMs, msPerCost: s.msPerCost });
  }
  const start = free[0]?.readyInMs ?? 0;
  if (ahead === simulated) return start;
  // Tasks per millisecond the slots finish together.
  const rate = free.reduce((r, s) => r + 1 / (s.msPerCost * cost + overheadMs), 0);
  return start + (ahead - simulated) / rate;
}

function insertSlot(xs: Slot[], v: Slot): void {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid]?.readyInMs ?? 0) <= v.readyInMs) lo = mid + 1;
    else hi = mid;
  }
  xs.splice(lo, 0, v);
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
