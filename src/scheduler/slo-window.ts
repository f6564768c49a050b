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
    return summarize(this.#samples, o.sinceMs);
  }

  /** One snapshot over the samples of several windows (the members of a replica set). */
  static merged(windows: readonly SloWindow[]): Partial<Record<Priority, SloSnapshot>> {
    const all = new Map<Priority, { ttftMs: number | undefined; ok: boolean }[]>();
    for (const w of windows) for (const [p, xs] of w.#samples) all.set(p, [...(all.get(p) ?? []), ...xs]);
    return summarize(all);
  }
}

/** `sinceMs`: only samples stamped at or after it count (a priority with none is left out). */
function summarize(
  samples: ReadonlyMap<Priority, readonly { ttftMs: number | undefined; ok: boolean; atMs?: number }[]>,
  sinceMs?: number,
): Partial<Record<Priority, SloSnapshot>> {
  const out: Partial<Record<Priority, SloSnapshot>> = {};
  for (const [priority, all] of samples) {
    // Summarized on every finished task (the SLO breaker): one pass and a numeric typed-array
    // sort, not filtered copies and a comparator sort.
    const ttfts = new Float64Array(all.length);
    let n = 0;
    let errors = 0;
    let count = 0;
    for (const x of all) {
      if (sinceMs !== undefined && (x.atMs ?? 0) < sinceMs) continue;
      count++;
      if (x.ttftMs !== undefined) ttfts[n++] = x.ttftMs;
      if (!x.ok) errors++;
    }
    if (count === 0) continue;
    const sorted = ttfts.subarray(0, n).sort();
    const p95 = n === 0 ? null : (sorted[Math.min(n - 1, Math.floor(0.95 * n))] ?? null);
    const errorRate = errors / count;
    const t = SLO_TARGETS[priority];
    out[priority] = {
      samples: count,
      ttft_p95_ms: p95,
      error_rate: errorRate,
      target_ttft_p95_ms: t.ttftP95Ms ?? null,
      target_error_rate: t.errorRate,
      met: errorRate <= t.errorRate && (t.ttftP95Ms === undefined || p95 === null || p95 <= t.ttftP95Ms),
    };
  }
  return out;
}
