/** `llorch plugins build|test`: build an AssemblyScript policy plugin, run one over recorded snapshots. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { buildPlugin, testPlugin } from '../plugins/plugin-build.js';

const USAGE =
  'usage: llorch plugins build DIR [--out FILE] [--memory-max-bytes N]\n' +
  '       llorch plugins test MODULE --snapshots FILE [--budget-ms N]   (FILE: a JSON array or one snapshot per line)';

/** A JSON array of snapshots, or JSON Lines. */
export function parseSnapshots(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
  return trimmed
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}

export async function pluginsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'memory-max-bytes': { type: 'string' },
      snapshots: { type: 'string' },
      'budget-ms': { type: 'string', default: '1' },
    },
  });
  const target = positionals[0];
  if (target === undefined) throw new Error(USAGE);
  switch (sub ?? '') {
    case 'build': {
      const max = values['memory-max-bytes'];
      const r = await buildPlugin(target, {
        ...(values.out === undefined ? {} : { out: values.out }),
        ...(max === undefined ? {} : { memoryMaxBytes: Number(max) }),
      });
      process.stdout.write(
        `${r.path}: ${r.manifest.id} ${r.manifest.version} (ABI ${r.manifest.abi}), ${r.bytes} bytes, memory maximum ${r.maximumPages} pages\n`,
      );
      return;
    }
    case 'test': {
      if (values.snapshots === undefined) throw new Error(USAGE);
      const budget = Number(values['budget-ms']);
      if (!(budget > 0)) throw new Error('--budget-ms must be a positive number');
      const snapshots = parseSnapshots(await readFile(values.snapshots, 'utf8'));
      const { outcomes } = await testPlugin(target, snapshots, budget);
      for (const o of outcomes) process.stdout.write(`${JSON.stringify(o)}\n`);
      return;
    }
    default:
      throw new Error(USAGE);
  }
}
