/** `tsx bench/lib/profile-summary.ts FILE.cpuprofile [N]`: the N functions with most self time. */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
const file = process.argv[2];
if (!file) throw new Error('usage: profile-summary FILE.cpuprofile [N]');
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
const total = prof.samples.length;
const self = new Map<string, number>();
for (const n of prof.nodes) {
  const { functionName, url, lineNumber } = n.callFrame;
  const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, 'nm:').replace(/^file:\/\/.*\/(src|bench)\//, '$1/')}:${lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
}
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 40));
for (const [k, v] of top) process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
// By package / area
const areas = new Map<string, number>();
for (const n of prof.nodes) {
  const u = n.callFrame.url;
  const area =
    u === ''
      ? '(native/idle)'
      : u.includes('node_modules/')
        ? `nm:${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1] ?? '?'}`
        : u.startsWith('node:')
          ? u
          : u.includes('/src/')
            ? `src/${/\/src\/([^/]+)/.exec(u)?.[1] ?? ''}`
            : 'other';
  areas.set(area, (areas.get(area) ?? 0) + (n.hitCount ?? 0));
}
process.stdout.write('\nby area:\n');
for (const [k, v] of [...areas.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25))
  process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
