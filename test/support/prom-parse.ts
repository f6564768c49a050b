/** A strict reader of the Prometheus text format (0.0.4), for contract tests of `/metrics`. */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedFamily {
  type: string | undefined;
  help: string | undefined;
  readonly samples: Sample[];
}

const SUFFIXES = ['_bucket', '_sum', '_count'];

/** Families keyed by name; histogram `_bucket/_sum/_count` samples belong to their family. */
export function parseExposition(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const family = (name: string): ParsedFamily => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { type: undefined, help: undefined, samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === 'TYPE') f.type = meta[3];
      else f.help = meta[3];
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const name = m[1]!;
    const labels: Record<string, string> = {};
    const body = m[2]?.slice(1, -1) ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;
    let consumed = 0;
    for (let l = re.exec(body); l; l = re.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`unparsable labels: ${line}`);
    const base = SUFFIXES.find(
      (s) => name.endsWith(s) && families.get(name.slice(0, -s.length))?.type === 'histogram',
    );
    family(base ? name.slice(0, -base.length) : name).samples.push({ name, labels, value: Number(m[3]) });
  }
  return families;
}
