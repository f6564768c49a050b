/** A closed-loop load generator: `concurrency` workers run requests until a count or time bound. */

export interface Timing {
  /** Time to first token in ms, from the first byte sent. */
  readonly ttftMs: number;
  /** Time to the end of the stream in ms. */
  readonly totalMs: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly seconds: number;
  readonly rps: number;
  readonly ttft: Percentiles;
  readonly total: Percentiles;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

/** The `q` quantile (0..1) of `xs` (nearest rank); NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

export function percentiles(xs: readonly number[]): Percentiles {
  return { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) };
}

export async function runLoad(
  concurrency: number,
  opts: { maxRequests: number; maxSeconds: number },
  one: () => Promise<Timing>,
): Promise<LoadResult> {
  const timings: Timing[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let issued = 0;
  const t0 = performance.now();
  const deadline = t0 + opts.maxSeconds * 1000;
  const worker = async (): Promise<void> => {
    while (issued < opts.maxRequests && performance.now() < deadline) {
      issued++;
      try {
        timings.push(await one());
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return {
    requests: timings.length,
    errors,
    firstError,
    seconds,
    rps: timings.length / seconds,
    ttft: percentiles(timings.map((t) => t.ttftMs)),
    total: percentiles(timings.map((t) => t.totalMs)),
  };
}

/** Renders rows as a Markdown table. */
export function markdownTable(header: readonly string[], body: readonly (readonly string[])[]): string {
  // A `|` inside a cell would end it: escape it.
  const esc = (cells: readonly string[]) => cells.map((c) => c.replace(/\|/g, '\\|'));
  const head = esc(header);
  const rows = body.map(esc);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
