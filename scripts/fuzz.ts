/**
 * `npm run fuzz`: a long OpenAPI-driven fuzz survey against one orchestrator with simulated
 * pools (test/fuzz). Prints the seed, the status mix and every failure class (rule, status,
 * operation) with its count, what its cases share, and a shrunk request. Exit code 1 when any
 * class was found.
 *
 *   FUZZ_RUNS=20000 FUZZ_SEED=42 npm run fuzz
 */
import { FuzzClient, startFuzzTarget } from '../test/fuzz/fuzz-target.js';
import { describeFailure, survey } from '../test/fuzz/fuzz-runner.js';

const runs = Number(process.env['FUZZ_RUNS'] ?? 5_000);
const seed = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** How long fast-check may shrink each failure class. */
const shrinkMs = Number(process.env['FUZZ_SHRINK_MS'] ?? 30_000);

const h = await startFuzzTarget();
const client = new FuzzClient(h.url);
const started = Date.now();
console.log(`fuzz: seed ${seed}, ${runs} runs against ${h.url} (FUZZ_SEED=${seed} replays them)`);
try {
  const s = await survey(client, seed, runs, (done) => console.log(`  … ${done}/${runs}`), shrinkMs);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\n${s.runs} requests in ${secs} s; ${s.invalid} built invalid; ${s.unsendable} unsendable by the client`,
  );
  console.log(
    'statuses: ' +
      [...s.statuses.entries()]
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
        .map(([k, n]) => `${k}×${n}`)
        .join(' '),
  );
  const classes = [...s.classes.values()].sort((a, b) => b.count - a.count);
  console.log(`\n${classes.length} failure class(es)`);
  for (const c of classes) {
    console.log(`\n## ${c.key}  (${c.count} cases, first at run ${c.firstRun})`);
    if (c.common.size > 0) console.log(`shared by all its cases: ${[...c.common].join(' · ')}`);
    console.log(c.shrunk ? 'shrunk:' : 'first case (did not reproduce alone):');
    console.log(describeFailure(c.shrunk ?? c.first));
  }
  process.exitCode = classes.length > 0 ? 1 : 0;
} finally {
  await client.close();
  await h.close();
}
