/**
 * Small helpers over the Prometheus text exposition format: read a gauge, and re-label an
 * engine's scrape so it can be re-exported next to llama-orch's own metrics (SPEC §7, §12).
 */

/** The value of the first sample of `name` (optionally one whose labels contain `labelMatch`). */
export function gauge(text: string, name: string, labelMatch?: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labelMatch !== undefined && !rest.includes(labelMatch)) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) return value;
  }
  return undefined;
}

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Metric families of a scrape: HELP/TYPE lines and samples, keyed by family name. */
export interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: string[];
}

/**
 * Adds `labels` to every sample of `text` (replacing same-named labels the engine set) and
 * merges the result into `into`, so several replicas' scrapes become one valid exposition.
 */
export function relabelInto(
  into: Map<string, Family>,
  text: string,
  labels: Readonly<Record<string, string>>,
): void {
  const extra = Object.entries(labels);
  const keys = new Set(Object.keys(labels));
  const fam = (name: string) => {
    let f = into.get(name);
    if (!f) into.set(name, (f = { help: undefined, type: undefined, samples: [] }));
    return f;
  };
  let current: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = fam((current = meta[2] ?? ''));
      if (meta[1] === 'HELP') f.help ??= meta[3];
      else f.type ??= meta[3];
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(.+)$/.exec(line);
    if (!m) continue;
    const name = m[1] ?? '';
    const own = (m[3] ?? '')
      .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
      .filter((p) => p.trim() !== '' && !keys.has(p.split('=')[0]?.trim() ?? ''));
    const all = [...own, ...extra.map(([k, v]) => `${k}="${escape(v)}"`)];
    // Histogram/summary samples (_bucket, _sum, _count) belong to the family declared before them.
    const family = current !== undefined && name.startsWith(current) ? current : name;
    fam(family).samples.push(`${name}{${all.join(',')}} ${m[4] ?? ''}`);
  }
}

export function renderFamilies(families: ReadonlyMap<string, Family>): string {
  const out: string[] = [];
  for (const [name, f] of families) {
    if (f.samples.length === 0) continue;
    if (f.help !== undefined) out.push(`# HELP ${name} ${f.help}`);
    if (f.type !== undefined) out.push(`# TYPE ${name} ${f.type}`);
    out.push(...f.samples);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
