/**
 * llama.cpp workloads through the public API on the real llama-server: embeddings from a pool
 * launched with `launch.embeddings` (`--embeddings --pooling mean`), capabilities as the engines
 * report them (no rerank: llama.cpp reranks only with a classification-head model), prompt tokens
 * of a warm session, and `kv_cache_usage_ratio` read from the engine's slots.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  type Harness,
} from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  const model = await tinyModelPath();
  const emb = tinyPool('lc-emb', model);
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      { ...emb, launch: { ...emb.launch, embeddings: { pooling: 'mean' } } },
      tinyPool('lc-plain', model),
      // The simulator in llama.cpp's dialect takes the same launch fields (llama-server's flags).
      simPool('lc-sim-emb', 'llamacpp', {
        launch: { worker: 'sim', parallel: 2, embeddings: { pooling: 'mean' }, sim: { tokens_per_s: 2_000 } },
      }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

function embeddingTask(modelRef: string, inputs: string[]) {
  const t = task(modelRef, { workload: 'embedding', inputs });
  delete (t as Record<string, unknown>)['prompt'];
  return t;
}

describe('llama.cpp workloads (real llama-server)', () => {
  it('embeddings end to end: one unit vector per input, in input order', async () => {
    const inputs = ['first document', 'second document', 'first document'];
    const t = embeddingTask('lc-emb', inputs);
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
    const end = events.at(-1);
    expect(end?.event).toBe('end');
    const vectors = end?.data['embeddings'] as number[][];
    expect(vectors).toHaveLength(3);
    expect(vectors[0]).toHaveLength(64);
    expect(Math.hypot(...(vectors[0] ?? []))).toBeCloseTo(1, 5);
    expect(vectors[0]).toEqual(vectors[2]);
    expect(vectors[0]).not.toEqual(vectors[1]);
    expect(end?.data['tokens_in']).toBeGreaterThan(0);
  });

  it('a simulated llama.cpp pool launched with embeddings serves them too', async () => {
    const t = embeddingTask('lc-sim-emb', ['a', 'b']);
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    const end = (await readStream(h.url, t.task_id, { key: KEYS.alice })).events.at(-1);
    expect(end?.event).toBe('end');
    expect(end?.data['embeddings']).toHaveLength(2);
  });

  it('a pool launched without embeddings refuses them at admission, naming the pool', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: embeddingTask('lc-plain', ['x']),
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(JSON.stringify(r.json)).toContain('lc-plain');
  });

  it('capabilities: embeddings as detected on the engine, never rerank, continuous batching as launched', async () => {
    const caps = (await call(h.url, 'GET', '/v1/capabilities', { key: KEYS.ops })).json as {
      engines: { engine: string; supported_workloads: string[]; features: Record<string, unknown> }[];
    };
    const llama = caps.engines.find((e) => e.engine === 'llamacpp');
    expect(llama?.supported_workloads).toEqual(['completion', 'embedding']);
    expect(llama?.features).toMatchObject({ embeddings: true, continuous_batching: false });
    const rerank = task('lc-emb', { workload: 'rerank', inputs: ['q', 'd'] });
    delete (rerank as Record<string, unknown>)['prompt'];
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: rerank })).json).toMatchObject({
      code: 'INVALID_PARAMS',
    });
  });

  it('a warm session counts its whole prompt as tokens in, turn after turn', async () => {
    const session = randomUUID();
    const prompt = 'The same long prompt, sent twice in one session';
    const tokensIn: unknown[] = [];
    for (let turn = 0; turn < 2; turn++) {
      const t = task('lc-plain', { session_id: session, prompt, max_tokens: 4 });
      expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
      const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
      tokensIn.push(events.at(-1)?.data['tokens_in']);
    }
    expect(tokensIn[0]).toBeGreaterThan(10);
    // The second turn found the prompt cached; it is still the same prompt.
    expect(tokensIn[1]).toBe(tokensIn[0]);
  });

  it('kv_cache_usage_ratio is read from the slots of each llama.cpp replica', async () => {
    // A finished request leaves its tokens in the slot's cache.
    const t = task('lc-plain', { max_tokens: 4 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    await readStream(h.url, t.task_id, { key: KEYS.alice });
    const m = await call(h.url, 'GET', '/metrics');
    const line = m.text
      .split('\n')
      .find((l) => l.startsWith('kv_cache_usage_ratio{') && l.includes('replica_id="lc-plain-r0"'));
    expect(line).toBeDefined();
    const v = Number(line?.split(' ').at(-1));
    expect(v).toBeGreaterThan(0);
    expect(v).toBeLessThanOrEqual(1);
  });
});
