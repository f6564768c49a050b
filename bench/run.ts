/**
 * `npm run bench -- <name>`: runs one benchmark, prints its table and writes JSON results to
 * bench/results/<name>.json. Benchmarks bind loopback only, bound themselves in requests and
 * time, and stop every process they started.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { schedulingBench } from './scheduling.js';
import { overheadBench } from './overhead.js';
import { realEngineBench } from './real-engine.js';
import { scaleBench } from './scale.js';
import { journalBench } from './journal.js';
import { soakBench } from './soak.js';
import { pluginsBench } from './plugins.js';
import { loadgenBench } from './loadgen.js';
import { prefixBench } from './prefix.js';

const BENCHES: Record<string, () => Promise<{ table: string; results: unknown }>> = {
  scheduling: schedulingBench,
  overhead: overheadBench,
  'real-engine': realEngineBench,
  scale: scaleBench,
  journal: journalBench,
  soak: soakBench,
  plugins: pluginsBench,
  loadgen: loadgenBench,
  prefix: prefixBench,
};

async function main(): Promise<void> {
  const name = process.argv[2];
  const bench = name === undefined ? undefined : BENCHES[name];
  if (!name || !bench) {
    process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}>\n`);
    process.exit(2);
  }
  const started = new Date();
  const { table, results } = await bench();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  process.stdout.write(`\n${name} — ${started.toISOString()} — ${machine}\n\n${table}\n`);
  await mkdir('bench/results', { recursive: true });
  await writeFile(
    `bench/results/${name}.json`,
    `${JSON.stringify({ name, started, machine, results }, null, 2)}\n`,
  );
  process.exit(0);
}

void main();
