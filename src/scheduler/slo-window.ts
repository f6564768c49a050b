/**
 * A rolling SLO snapshot per priority (SPEC §15 defaults): time to first token p95 and the error
 * rate over the last `size` finished tasks, against the targets.
 */
import type { Clock, Priority } from '../domain/types.js';

export const SLO_TARGETS: Readonly<Record<Priority, { ttftP95Ms: number | undefined; errorRate: number }>> = {
  interactive: { ttftP95Ms: 900, errorRate: 0.005 },
  batch: { ttftP95Ms: undefined, errorRate: 0.01 },
};

export interface SloSnapshot {
  readonly samples: number;
  readonly ttft_p95_ms: number | null;
  readonly error_rate: number;
  readonly target_ttft_p95_ms: number | null;
  readonly target_error_rate: number;
  readonly met: boolean;
}

export class SloWindow {
  readonly #size: number;
  readonly #clock: Clock | undefined;
  readonly #samples = new Map<Priority, { ttftMs: number | undefined; ok: boolean; atMs: number }[]>();

  /** With a clock, samples are stamped so that a snapshot can keep recent ones only. */
  constructor(size = 256, clock?: Clock) {
    this.#size = size;
    this.#clock = clock;
  }

  record(priority: Priority, ttftMs: number | undefined, ok: boolean): void {
    const xs = this.#samples.get(priority) ?? [];
    xs.push({ ttftMs, ok, atMs: this.#clock?.now() ?? 0 });
    if (xs.length > this.#size) xs.shift();
    this.#samples.set(priority, xs);
  }

  /** `sinceMs` keeps only the samples recorded at or after it (the SLO breaker's window). */
  snapshot(o: { readonly sinceMs?: number } = {}): Partial<Record<Priority, SloSnapshot>> {
    const since = o.sinceMs;
    if (since === undefined) return summarize(this.#samples);
    const recent = new Map<Priority, { ttftMs: number | undefined; ok: boolean }[]>();
    for (const [p, xs] of this.#samples) {
      const kept = xs.filter((x) => x.atMs >= since);
      if (kept.length > 0) recent.set(p, kept);
    }
    return summarize(recent);
  }

  /** One snapshot over the samples of several windows (the members of a replica set). */
  static merged(windows: readonly SloWindow[]): Partial<Record<Priority, SloSnapshot>> {
    const all = new Map<Priority, { ttftMs: number | undefined; ok: boolean }[]>();
    for (const w of windows) for (const [p, xs] of w.#samples) all.set(p, [...(all.get(p) ?? []), ...xs]);
    return summarize(all);
  }
}

function summarize(
  samples: ReadonlyMap<Priority, readonly { ttftMs: number | undefined; ok: boolean }[]>,
): Partial<Record<Priority, SloSnapshot>> {
  const out: Partial<Record<Priority, SloSnapshot>> = {};
  for (const [priority, xs] of samples) {
    const ttfts = xs.flatMap((x) => (x.ttftMs === undefined ? [] : [x.ttftMs])).sort((a, b) => a - b);
    const p95 =
      ttfts.length === 0
        ? null
        : (ttfts[Math.min(ttfts.length - 1, Math.floor(0.95 * ttfts.length))] ?? null);
    const errorRate = xs.filter((x) => !x.ok).length / xs.length;
    const t = SLO_TARGETS[priority];
    out[priority] = {
      samples: xs.length,
      ttft_p95_ms: p95,
      error_rate: errorRate,
      target_ttft_p95_ms: t.ttftP95Ms ?? null,
      target_error_rate: t.errorRate,
      met: errorRate <= t.errorRate && (t.ttftP95Ms === undefined || p95 === null || p95 <= t.ttftP95Ms),
    };
  }
  return out;
}
