import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { forkTs } from './lib/procs.js';
import { agent } from './lib/stream-clients.js';
const cfg = {
  profile: 'dev',
  listen: { host: '127.0.0.1', port: 0 },
  logging: { level: process.env.LVL ?? 'info' },
  data_dir: '/tmp/llorch-prof',
  pools: [
    {
      id: 'bench',
      engine: 'vllm',
      model: { id: 'bench' },
      ctx: 4096,
      devices: 'cpu',
      replicas: 1,
      queue: { capacity: 4096 },
      launch: {
        worker: 'sim',
        parallel: 512,
        sim: { tokens_per_s: 500, prefill_tokens_per_s: 1000000, batch_slowdown: 0, kv_tokens: 1000000 },
      },
    },
  ],
};
const { proc, ready } = await forkTs<{ url: string }>(
  new URL('./lib/orchestrator-child.ts', import.meta.url).pathname,
  cfg,
);
const phases: number[][] = [];
async function one() {
  const t0 = performance.now();
  const id = randomUUID();
  const r = await request(`${ready.url}/v1/tasks`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      task_id: id,
      session_id: randomUUID(),
      workload: 'completion',
      model_ref: 'bench',
      engine: 'vllm',
      ctx: 4096,
      priority: 'interactive',
      prompt: 'Once upon a time',
      max_tokens: 64,
      deadline_ms: 600000,
    }),
  });
  await r.body.text();
  const t1 = performance.now();
  const s = await request(`${ready.url}/v1/tasks/${id}/stream`, { dispatcher: agent });
  const t2 = performance.now();
  let t3 = 0,
    t4 = 0;
  for await (const c of s.body) {
    const x = c.toString();
    if (!t4 && x.includes('event: started')) t4 = performance.now();
    if (!t3 && x.includes('event: token')) t3 = performance.now();
  }
  phases.push([t1 - t0, t2 - t1, t4 - t0, t3 - t0]);
}
const C = Number(process.env.C ?? 16);
for (let round = 0; round < 2; round++) {
  phases.length = 0;
  const end = performance.now() + 5000;
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (performance.now() < end) await one();
    }),
  );
}
const med = (i: number) =>
  phases
    .map((p) => p[i]!)
    .sort((a, b) => a - b)
    [Math.floor(phases.length / 2)]!.toFixed(2);
console.log(
  `C=${C} n=${phases.length} enqueue ${med(0)} ms, stream headers ${med(1)} ms, started@ ${med(2)} ms, first token@ ${med(3)} ms`,
);
await proc.stop();
