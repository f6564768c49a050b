/**
 * The SLO breaker of a pool (ORCH-3040): when the pool's interactive SLO (SPEC §15: p95 time to
 * first token ≤ 900 ms, error rate ≤ 0.5%) has been violated continuously for `openAfterMs`, the
 * breaker opens and admission sheds the pool's batch work, which is what competes with
 * interactive work for slots. Interactive work is never shed by the breaker: refusing the class
 * the SLO protects would only hide the violation.
 *
 * States: `closed` → `open` (violated for `openAfterMs`) → `recovering` (the SLO is met again)
 * → `closed` only once the SLO has been met continuously for `closeAfterMs`; a violation while
 * recovering goes back to `open` and the good stretch starts over. Batch is shed while `open`
 * and while `recovering`, so shedding can change at most once per `openAfterMs` /
 * `closeAfterMs` whatever the input does (hysteresis).
 *
 * Pure and clock-driven: the caller feeds verdicts with their time, so tests run on a fake clock.
 * "Continuously" means every verdict fed over that stretch; between verdicts the last one holds.
 */
import type { Priority } from '../domain/types.js';
import { SLO_TARGETS, type SloSnapshot } from './slo-window.js';

export type SloBreakerState = 'closed' | 'open' | 'recovering';

/** A pool's breaker settings (`pools[].slo_breaker`). */
export interface SloBreakerSettings {
  readonly enabled: boolean;
  /** Finished tasks of the last `windowMs` are judged; shorter than `openAfterMs`. */
  readonly windowMs: number;
  /** A violation lasting this long opens the breaker. */
  readonly openAfterMs: number;
  /** The SLO met for this long closes it again. */
  readonly closeAfterMs: number;
  /** Fewer finished interactive tasks in the window are no evidence of a violation. */
  readonly minSamples: number;
}

/** What one look at the SLO window found. */
export type SloVerdict = { readonly violated: false } | { readonly violated: true; readonly cause: string };

/** The breaker as health reports it. */
export interface SloBreakerView {
  readonly enabled: boolean;
  readonly state: SloBreakerState;
  /** When the breaker entered its state (ms since the epoch, per the clock). */
  readonly sinceMs: number;
  /** The violation that keeps it open (latest seen); null while closed. */
  readonly cause: string | null;
}

export interface SloBreakerTransition {
  readonly from: SloBreakerState;
  readonly to: SloBreakerState;
  readonly atMs: number;
  readonly cause: string | null;
}

/**
 * The interactive SLO verdict of a window snapshot. Too few samples is no violation: a pool with
 * little or no traffic cannot be shown to miss its SLO, and an open breaker must be able to
 * close while nothing arrives.
 */
export function sloVerdict(snapshot: SloSnapshot | undefined, minSamples: number): SloVerdict {
  if (snapshot === undefined || snapshot.samples < minSamples || snapshot.met) return { violated: false };
  const t = SLO_TARGETS.interactive;
  const over = `over the last ${snapshot.samples} interactive tasks`;
  if (snapshot.error_rate > t.errorRate)
    return {
      violated: true,
      cause: `interactive error rate ${pct(snapshot.error_rate)} > ${pct(t.errorRate)} ${over}`,
    };
  return {
    violated: true,
    cause: `interactive p95 time to first token ${Math.round(snapshot.ttft_p95_ms ?? 0)} ms > ${t.ttftP95Ms ?? 0} ms ${over}`,
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export class SloBreaker {
  readonly settings: SloBreakerSettings;
  #state: SloBreakerState = 'closed';
  #sinceMs: number;
  #cause: string | null = null;
  /** Closed: start of the current run of violated verdicts. */
  #violatedSince: number | undefined;
  /** Open or recovering: start of the current run of good verdicts. */
  #goodSince: number | undefined;

  constructor(settings: SloBreakerSettings, nowMs: number) {
    this.settings = settings;
    this.#sinceMs = nowMs;
  }

  get state(): SloBreakerState {
    return this.#state;
  }

  view(): SloBreakerView {
    return { enabled: this.settings.enabled, state: this.#state, sinceMs: this.#sinceMs, cause: this.#cause };
  }

  /** True when admission refuses new work of `priority`: batch, while open or recovering. */
  sheds(priority: Priority): boolean {
    return priority === 'batch' && this.#state !== 'closed';
  }

  /** The earliest the breaker could close from now: the backoff a shed request is told. */
  retryAfterMs(nowMs: number): number {
    const { closeAfterMs } = this.settings;
    const left = this.#goodSince === undefined ? closeAfterMs : this.#goodSince + closeAfterMs - nowMs;
    return Math.max(1, Math.ceil(left));
  }

  /** Feeds one verdict taken at `nowMs`; returns the state change it caused, if any. */
  observe(nowMs: number, verdict: SloVerdict): SloBreakerTransition | undefined {
    if (!this.settings.enabled) return undefined;
    const { openAfterMs, closeAfterMs } = this.settings;
    if (this.#state === 'closed') {
      if (!verdict.violated) {
        this.#violatedSince = undefined;
        return undefined;
      }
      this.#violatedSince ??= nowMs;
      if (nowMs - this.#violatedSince < openAfterMs) return undefined;
      this.#violatedSince = undefined;
      return this.#enter('open', nowMs, verdict.cause);
    }
    if (verdict.violated) {
      this.#goodSince = undefined;
      this.#cause = verdict.cause;
      return this.#state === 'recovering' ? this.#enter('open', nowMs, verdict.cause) : undefined;
    }
    this.#goodSince ??= nowMs;
    if (nowMs - this.#goodSince >= closeAfterMs) {
      this.#goodSince = undefined;
      return this.#enter('closed', nowMs, null);
    }
    return this.#state === 'open' ? this.#enter('recovering', nowMs, this.#cause) : undefined;
  }

  #enter(to: SloBreakerState, nowMs: number, cause: string | null): SloBreakerTransition {
    const from = this.#state;
    this.#state = to;
    this.#sinceMs = nowMs;
    this.#cause = cause;
    return { from, to, atMs: nowMs, cause };
  }
}
