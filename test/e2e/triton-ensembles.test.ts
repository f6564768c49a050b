/**
 * Triton pools over both stock TensorRT-LLM ensembles, end to end: the orchestrator with
 * simulated Triton servers holding the legacy repository (`random_seed`, no
 * `exclude_input_in_output`, no token counts) and the current one (`seed`,
 * `exclude_input_in_output`, `return_num_*_tokens`, here with several tokens per streamed
 * response as under speculative decoding), and one whose models have other names. Every task
 * completes with the right token counts, seeds take effect, no request carries an input the
 * ensemble does not declare, and the TensorRT-LLM version comes from the engine's config.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import type { EngineEvent } from '../../src/engines/adapter.js';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  type Harness,
} from '../support/harness.js';

function tritonPool(
  id: string,
  ensemble: 'legacy' | 'current',
  launch: NonNullable<RawPool['launch']> = {},
): RawPool {
  const p = simPool(id, 'triton', { sim: { triton_ensemble: ensemble } });
  return { ...p, launch: { ...p.launch, ...launch } };
}

const NAMES = {
  ensemble_model: 'llama_ensemble',
  preprocessing_model: 'llama_tokenizer',
  tensorrt_llm_model: 'llama_trt',
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      tritonPool('tri-legacy', 'legacy'),
      tritonPool('tri-current', 'current', { extra_args: ['--triton-tokens-per-response', '3'] }),
      tritonPool('tri-named', 'current', { triton: NAMES }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

const pool = (id: string): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === id);
  if (!p) throw new Error(`no pool ${id}`);
  return p;
};
const simUrl = (id: string) => pool(id).supervisor.replicas()[0]?.adapter.baseUrl ?? '';
const observed = async (id: string) =>
  (await (await fetch(`${simUrl(id)}/__sim/triton`)).json()) as {
    ensemble: string;
    models: Record<string, string>;
    ignored_parameters: Record<string, number>;
    infer_requests: Record<string, number>;
  };

async function run(poolId: string, extra: Record<string, unknown> = {}) {
  const t = task(poolId, { engine: 'triton', max_tokens: 12, prompt: 'hello triton', ...extra });
  const accepted = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  expect(accepted.status).toBe(202);
  const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
  const tokens = events.filter((e) => e.event === 'token');
  return { end: events.at(-1), tokens, text: tokens.map((e) => String(e.data['t'])).join('') };
}

describe.each(['tri-legacy', 'tri-current', 'tri-named'])('%s', (poolId) => {
  it('completes a task with the token counts of the engine', async () => {
    const { end, tokens } = await run(poolId);
    expect(tokens).toHaveLength(12);
    expect(tokens.map((e) => e.data['i'])).toEqual(tokens.map((_, i) => i));
    // The simulated tokenizer: BOS + one token per byte of "hello triton".
    expect(end).toMatchObject({ event: 'end', data: { tokens_out: 12, tokens_in: 13 } });
  });

  it('the seed takes effect: same seed, same text; another seed, another text', async () => {
    const a = await run(poolId, { seed: 11 });
    const b = await run(poolId, { seed: 11 });
    const c = await run(poolId, { seed: 12 });
    expect(b.text).toBe(a.text);
    expect(c.text).not.toBe(a.text);
  });

  it('no request (self-test, cancel check, tasks) carried an input the ensemble does not declare', async () => {
    await run(poolId);
    expect((await observed(poolId)).ignored_parameters).toEqual({});
  });

  it('trtllm_version and engine_version come from the engine directory the repository names', async () => {
    const health = (await call(h.url, 'GET', `/v1/pools/${poolId}/health`, { key: KEYS.ops })).json;
    expect(health).toMatchObject({ trtllm_version: 'sim-triton-1' });
    expect(String((health as Record<string, unknown>)['engine_version'])).toMatch(
      /^\d+\.\d+\.\d+\+trtllm-sim-triton-1$/,
    );
  });
});

describe('configured model names', () => {
  it('the pool talks to the models it names, and the server has no model under the stock names', async () => {
    const seen = await observed('tri-named');
    expect(seen.models).toEqual({
      ensemble: 'llama_ensemble',
      preprocessing: 'llama_tokenizer',
      tensorrtLlm: 'llama_trt',
    });
    // Admission counted the prompt through the configured tokenizer model.
    expect(seen.infer_requests['llama_tokenizer']).toBeGreaterThan(0);
    const stock = await fetch(`${simUrl('tri-named')}/v2/models/ensemble/ready`);
    expect(stock.status).toBe(400);
  });
});

describe('adapter against each repository: token counts and the tokenizer calls they need', () => {
  const engines: EngineUnderTest[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.stop()));
  });

  it.each(['legacy', 'current'] as const)('%s', async (variant) => {
    const perResponse = variant === 'current' ? ['--triton-tokens-per-response', '4'] : [];
    const e = await startEngine(tritonPool(`tri-adapter-${variant}`, variant, { extra_args: perResponse }));
    engines.push(e);
    const infers = async () =>
      (
        (await (await fetch(`${e.baseUrl}/__sim/triton`)).json()) as {
          infer_requests: Record<string, number>;
        }
      ).infer_requests['preprocessing'] ?? 0;
    const until = Date.now() + 30_000;
    while (!(await e.adapter.probe(AbortSignal.timeout(2_000)).catch(() => ({ ready: false }))).ready) {
      if (Date.now() > until) throw new Error('simulator not ready');
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = await infers();
    const events: EngineEvent[] = [];
    const req = {
      prompt: 'count me',
      maxTokens: 10,
      seed: 3,
      determinism: 'strict' as const,
      samplerProfileVersion: 'v1',
      cachePrompt: false,
      ignoreEos: true,
    };
    for await (const ev of e.adapter.generate(req, AbortSignal.timeout(30_000))) events.push(ev);
    const counts = events.flatMap((ev) => (ev.kind === 'tokens' ? [ev.count] : []));
    // The current ensemble reports 4 tokens per response; the legacy one one per response.
    expect(counts).toEqual(variant === 'current' ? [4, 4, 2] : Array.from({ length: 10 }, () => 1));
    expect(events.at(-1)).toEqual({ kind: 'done', tokensIn: 9, tokensOut: 10, stopReason: 'length' });
    // Counts from the ensemble: no tokenizer call; without them, one per request.
    expect((await infers()) - before).toBe(variant === 'current' ? 0 : 1);
    const props = await e.adapter.properties(AbortSignal.timeout(5_000));
    expect(props).toMatchObject({ ctx: e.pool.ctx, trtllmVersion: 'sim-triton-1' });
    expect(props.features.continuousBatching).toBe(true);
  });
});
