/**
 * Just enough of the Prometheus text format for the console's charts: samples with their labels.
 * Types, help and timestamps are not needed; a line that does not parse is skipped.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const value = Number(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `match`. */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  let s = 0;
  for (const x of samples)
    if (x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v)) s += x.value;
  return s;
}

/** Sums of `name` grouped by one label. */
export function byLabel(samples: readonly Sample[], name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of samples)
    if (x.name === name) {
      const k = x.labels[label] ?? '';
      out.set(k, (out.get(k) ?? 0) + x.value);
    }
  return out;
}

/**
 * A quantile of the observations between two scrapes of a histogram (`<name>_bucket`), by linear
 * interpolation within the bucket, as PromQL's `histogram_quantile` does. Undefined when nothing
 * was observed in between.
 */
export function quantileBetween(
  before: readonly Sample[],
  after: readonly Sample[],
  name: string,
  q: number,
  match: Record<string, string> = {},
): number | undefined {
  const buckets = (s: readonly Sample[]): Map<number, number> => {
    const m = new Map<number, number>();
    for (const x of s)
      if (x.name === `${name}_bucket` && Object.entries(match).every(([k, v]) => x.labels[k] === v)) {
        const le = x.labels['le'] === '+Inf' ? Infinity : Number(x.labels['le']);
        m.set(le, (m.get(le) ?? 0) + x.value);
      }
    return m;
  };
  const a = buckets(after);
  const b = buckets(before);
  const edges = [...a.keys()].sort((x, y) => x - y);
  const counts = edges.map((le) => Math.max(0, (a.get(le) ?? 0) - (b.get(le) ?? 0)));
  const total = counts.at(-1) ?? 0;
  if (total === 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < edges.length; i++) {
    if (counts[i]! < rank) continue;
    const hi = edges[i]!;
    const lo = i === 0 ? 0 : edges[i - 1]!;
    if (hi === Infinity) return lo;
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    return inBucket === 0 ? hi : lo + ((hi - lo) * (rank - below)) / inBucket;
  }
  return undefined;
}
