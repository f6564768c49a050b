/**
 * `npm run chaos`: the chaos suite at a chosen size (CHAOS_TASKS, default 1000; CHAOS_SEED,
 * default random; CHAOS_RESTARTS, orchestrator restarts, default 3; CHAOS_NODE_LOSSES,
 * pool-managerd restarts, default 3). Needs `npm run build` (it runs `dist/` CLIs).
 * Exits 1 when an invariant broke; the seed it prints replays the same schedule.
 */
import { formatReport, runChaos } from '../test/chaos/chaos-run.js';

const int = (v: string | undefined, dflt: number): number => {
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got '${v}'`);
  return n;
};

const seed = int(process.env['CHAOS_SEED'], Math.floor(Math.random() * 2 ** 31));
const report = await runChaos({
  tasks: int(process.env['CHAOS_TASKS'], 1000),
  seed,
  restarts: int(process.env['CHAOS_RESTARTS'], 3),
  nodeLosses: int(process.env['CHAOS_NODE_LOSSES'], 3),
  concurrency: int(process.env['CHAOS_CONCURRENCY'], 12),
  log: (line) => console.error(line),
});
console.log(formatReport(report));
process.exitCode = report.violations.length === 0 ? 0 : 1;
