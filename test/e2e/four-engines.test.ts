/**
 * End to end: one orchestrator with one pool of each engine — real llama-server for llama.cpp,
 * simulated vLLM, TGI and Triton — serving completions through the public API; embeddings are
 * refused where the pool's engine does not serve them (a generating vLLM model, TGI).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES } from '../../src/domain/types.js';
import {
  KEYS,
  TEST_CTX,
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
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      tinyPool('e2e-llamacpp', await tinyModelPath()),
      simPool('e2e-vllm', 'vllm', { launch: { worker: 'sim', parallel: 4, api_key: 'vllm-secret' } }),
      simPool('e2e-tgi', 'tgi'),
      simPool('e2e-triton', 'triton'),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

describe('one pool per engine', () => {
  it.each(ENGINES)('%s serves a streamed completion through POST /v1/tasks + GET stream', async (engine) => {
    const t = task(`e2e-${engine}`, { engine, max_tokens: 12, prompt: `hello from ${engine}` });
    const accepted = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
    expect(accepted.status).toBe(202);
    const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
    expect(events[0]?.event).toBe('started');
    const tokens = events.filter((e) => e.event === 'token');
    expect(tokens.map((e) => e.data['i'])).toEqual(tokens.map((_, i) => i));
    const end = events.at(-1);
    expect(end).toMatchObject({
      event: 'end',
      data: { tokens_out: tokens.length, replica_id: `e2e-${engine}-r0` },
    });
    expect(end?.data['tokens_in']).toBeGreaterThan(0);
    if (engine !== 'llamacpp') expect(tokens).toHaveLength(12);
  });

  // vLLM serves one task per model: the generating model here has no embeddings (detected, not claimed).
  it.each(['tgi', 'vllm'] as const)(
    'embeddings on a %s pool that does not serve them → 400 INVALID_PARAMS naming the pool',
    async (engine) => {
      const t = task(`e2e-${engine}`, { engine, workload: 'embedding', inputs: ['x'] });
      delete (t as Record<string, unknown>)['prompt'];
      const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ code: 'INVALID_PARAMS' });
      expect(JSON.stringify(r.json)).toContain(`e2e-${engine}`);
    },
  );

  it('a prompt over ctx is refused at admission by every engine tokenizer', async () => {
    for (const engine of ENGINES) {
      const t = task(`e2e-${engine}`, { engine, prompt: 'y'.repeat(TEST_CTX), max_tokens: 8 });
      const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
      expect(r.json).toMatchObject({ code: 'INVALID_PARAMS' });
    }
  });

  it('capabilities list all four engines; embeddings only where served; Triton reports trtllm_version', async () => {
    const caps = (await call(h.url, 'GET', '/v1/capabilities', { key: KEYS.ops })).json as {
      engines: { engine: string; supported_workloads: string[]; simulated: boolean }[];
    };
    expect(caps.engines.map((e) => e.engine).sort()).toEqual([...ENGINES].sort());
    for (const e of caps.engines) {
      // None of these pools serves embeddings (vLLM's model generates; see the test above).
      expect(e.supported_workloads.includes('embedding')).toBe(false);
      expect(e.simulated).toBe(e.engine !== 'llamacpp');
    }
    const triton = (await call(h.url, 'GET', '/v1/pools/e2e-triton/health', { key: KEYS.ops })).json;
    expect(triton).toMatchObject({ trtllm_version: 'sim-triton-1', simulated: true });
  });

  it('/metrics re-exports every engine scrape with the contract labels', async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    for (const [engine, name] of [
      ['llamacpp', 'llamacpp:tokens_predicted_total'],
      ['vllm', 'vllm:generation_tokens_total'],
      ['tgi', 'tgi_request_generated_tokens_count'],
      ['triton', 'nv_inference_request_success'],
    ] as const) {
      expect(text).toMatch(
        new RegExp(
          `${name}\\{[^}]*engine="${engine}",engine_version="[^"]+",pool_id="e2e-${engine}",replica_id="e2e-${engine}-r0",model_id="e2e-${engine}"`,
        ),
      );
    }
  });
});
