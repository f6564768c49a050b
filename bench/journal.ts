/**
 * `journal`: what the task journal (SPEC §17.1) costs at admission. Client-side `POST /v1/tasks`
 * → 202 latency with the journal on (the default: group commit into the data_dir SQLite, and the
 * answer waits for its transaction) and off, alternating runs on the same machine: a busy
 * single-slot simulated vLLM replica, 8 clients, the queue filling up to 5,000 tasks.
 */
import { randomUUID } from 'node:crypto';
import { markdownTable, percentiles } from './lib/load.js';
import { admissions, post } from './lib/admissions.js';
import { startBenchOrchestrator } from './lib/procs.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
const MEASURED = QUICK ? 2_000 : 5_000;
const WARM = 2_000;
const CLIENTS = 8;

const taskBody = (maxTokens: number) =>
  JSON.stringify({
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: 'journal',
    engine: 'vllm',
    ctx: 4096,
    priority: 'interactive',
    prompt: 'Once upon a time',
    max_tokens: maxTokens,
    deadline_ms: 8_640_000_000,
  });

interface Row {
  journal: 'on' | 'off';
  run: number;
  p50: number;
  p99: number;
}

async function once(journal: 'on' | 'off', run: number): Promise<Row> {
  process.env['BENCH_TASK_JOURNAL'] = journal;
  const { proc, ready } = await startBenchOrchestrator(
    `journal-${journal}-${run}`,
    {
      id: 'journal',
      engine: 'vllm',
      model: { id: 'journal' },
      ctx: 4096,
      devices: 'cpu',
      replicas: 1,
      queue: { capacity: 100_000 },
      launch: {
        worker: 'sim',
        parallel: 1,
        sim: { tokens_per_s: 1, prefill_tokens_per_s: 1_000_000, batch_slowdown: 0 },
      },
    },
    { logging: { level: 'warn' }, limits: { idle_timeout_ms: 120_000 } },
  );
  try {
    // One task holds the only slot; the rest waits in the queue.
    await post(ready.url, '/v1/tasks', taskBody(4000));
    await admissions(ready.url, { clients: CLIENTS, count: WARM, body: () => taskBody(16), cancel: true });
    const p = percentiles(
      await admissions(ready.url, {
        clients: CLIENTS,
        count: MEASURED,
        body: () => taskBody(16),
        cancel: false,
      }),
    );
    process.stderr.write(
      `journal ${journal} run ${run}: p50 ${p.p50.toFixed(2)} ms p99 ${p.p99.toFixed(2)} ms\n`,
    );
    return { journal, run, p50: p.p50, p99: p.p99 };
  } finally {
    await proc.stop();
    delete process.env['BENCH_TASK_JOURNAL'];
  }
}

export async function journalBench(): Promise<{ table: string; results: unknown }> {
  const rows: Row[] = [];
  // Alternating, so that a machine's drift over the run does not favour one side.
  for (let run = 1; run <= 2; run++) for (const j of ['off', 'on'] as const) rows.push(await once(j, run));
  const table = markdownTable(
    ['journal', 'run', `admission p50 ms (${MEASURED} tasks, ${CLIENTS} clients)`, 'p99 ms'],
    rows.map((r) => [r.journal, String(r.run), r.p50.toFixed(2), r.p99.toFixed(2)]),
  );
  return { table, results: rows };
}
