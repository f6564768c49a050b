/**
 * The simulator's Triton dialect against the Triton fixtures (derived from Triton's and
 * TensorRT-LLM's sources, test/fixtures/triton/README.md), for both stock repositories it serves:
 * what each declares, how Triton treats inputs a model does not declare, token counts, and the
 * engine directory that states the TensorRT-LLM version.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TRITON_SIM_DEFAULTS, type TritonSimOptions } from '../../src/sim/dialects/triton.js';
import { SIM_DEFAULTS, SimEngine } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';
import { fixture, shape, sseData } from './sim-fixture-shape.js';

const running: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function serve(o: Partial<TritonSimOptions> = {}): Promise<string> {
  const engine = new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'trtllm-sim-7',
    ctx: 1024,
    tokensPerSecond: 5_000,
  });
  const sim = await startSimServer({
    dialect: 'triton',
    engine,
    host: '127.0.0.1',
    port: 0,
    triton: { ...TRITON_SIM_DEFAULTS, ...o },
  });
  running.push(sim);
  return `http://127.0.0.1:${sim.port}`;
}

const get = async (base: string, path: string) => {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};
const post = async (base: string, path: string, body: unknown) => {
  const r = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
};

type Io = {
  name: string;
  data_type: string;
  dims: number[];
  optional?: boolean;
  allow_ragged_batch?: boolean;
};
const inputs = (c: Record<string, unknown>) =>
  (c['input'] as Io[]).map((i) => [i.name, i.data_type, i.dims, i.optional, i.allow_ragged_batch]);
const outputs = (c: Record<string, unknown>) =>
  (c['output'] as Io[]).map((o) => [o.name, o.data_type, o.dims]);

describe.each(['legacy', 'current'] as const)('Triton dialect, %s repository', (variant) => {
  const want = JSON.parse(fixture('triton', `ensemble-config-${variant}.json`)) as Record<string, unknown>;

  it('GET /v2/models/ensemble/config declares what the stock ensemble declares', async () => {
    const base = await serve({ ensemble: variant });
    const { status, json } = await get(base, '/v2/models/ensemble/config');
    expect(status).toBe(200);
    expect(inputs(json)).toEqual(inputs(want));
    expect(outputs(json)).toEqual(outputs(want));
    expect(shape(json)).toEqual(shape({ ...want, max_batch_size: 1 }));
    // The stock ensemble has no version or sequence-length parameters.
    expect(json['parameters']).toEqual({});
  });

  it('generate: a key naming no declared input is accepted as a parameter and has no effect', async () => {
    const base = await serve({ ensemble: variant });
    const body = { text_input: 'hi', max_tokens: 6, stream: true, end_id: -1, top_k: 40 };
    const undeclared = variant === 'legacy' ? 'seed' : 'random_seed';
    const declared = variant === 'legacy' ? 'random_seed' : 'seed';
    const text = async (b: Record<string, unknown>) =>
      sseData((await post(base, '/v2/models/ensemble/generate_stream', b)).text)
        .map((d) => (JSON.parse(d) as { text_output: string }).text_output)
        .join('');
    const [a, b, c] = [
      await text({ ...body, [undeclared]: 1 }),
      await text({ ...body, [undeclared]: 2 }),
      await text({ ...body, [declared]: 2 }),
    ];
    expect(a).toHaveLength(6);
    expect(b).toBe(a); // the undeclared seed never reached the sampler
    expect(c).not.toBe(a);
    const seen = await get(base, '/__sim/triton');
    expect(seen.json['ignored_parameters']).toEqual({ [undeclared]: 2 });
  });

  it('infer refuses an undeclared input as Triton does (400), and decoupled models outright (501)', async () => {
    const base = await serve({ ensemble: variant });
    const q = { name: 'QUERY', datatype: 'BYTES', shape: [1, 1], data: ['hi'] };
    const len = { name: 'REQUEST_OUTPUT_LEN', datatype: 'INT32', shape: [1, 1], data: [1] };
    const seed = { name: 'seed', datatype: 'UINT64', shape: [1, 1], data: [1] };
    const bad = await post(base, '/v2/models/preprocessing/infer', { inputs: [q, len, seed] });
    expect(bad.status).toBe(400);
    expect(bad.text).toBe(fixture('triton', 'infer-undeclared-input-400.json').trim());
    const ok = await post(base, '/v2/models/preprocessing/infer', { inputs: [q, len] });
    expect(ok.status).toBe(200);
    const okJson = JSON.parse(ok.text) as { outputs: { name: string; data: number[] }[] };
    expect(okJson.outputs.map((o) => o.name)).toEqual(['INPUT_ID', 'REQUEST_INPUT_LEN']);
    expect(okJson.outputs[1]?.data).toEqual([3]); // BOS + 2 bytes
    const stockInfer = JSON.parse(fixture('triton', 'infer-preprocessing.json')) as { outputs: unknown[] };
    expect(shape(okJson.outputs[0])).toEqual(shape(stockInfer.outputs[0]));
    const ens = await post(base, '/v2/models/ensemble/infer', { inputs: [q] });
    expect(ens.status).toBe(501);
    expect(ens.text).toBe(fixture('triton', 'infer-decoupled-501.json').trim());
  });
});

describe('Triton dialect: requests and responses', () => {
  it('a generate request without a required input is refused with core’s message', async () => {
    const base = await serve({ ensemble: 'legacy' });
    const r = await post(base, '/v2/models/ensemble/generate', { text_input: 'hi' });
    expect(r.status).toBe(400);
    expect(r.text).toBe(fixture('triton', 'generate-missing-input-400.json').trim());
  });

  it('current: the counts the request asked for, per response (several tokens per step)', async () => {
    const base = await serve({ ensemble: 'current', tokensPerResponse: 3 });
    const r = await post(base, '/v2/models/ensemble/generate_stream', {
      text_input: 'hello',
      max_tokens: 7,
      stream: true,
      seed: 3,
      end_id: -1,
      return_num_input_tokens: true,
      return_num_output_tokens: true,
    });
    const events = sseData(r.text).map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(events.map((e) => e['num_output_tokens'])).toEqual([3, 3, 1]);
    expect(events.map((e) => String(e['text_output']).length)).toEqual([3, 3, 1]);
    expect(new Set(events.map((e) => e['num_input_tokens']))).toEqual(new Set([6])); // BOS + 5 bytes
    const want = sseData(fixture('triton', 'generate-stream-counts.sse')).map((d) => JSON.parse(d) as object);
    expect(shape(events[0])).toEqual(shape(want[0]));
  });

  it('without the count flags the responses carry no counts', async () => {
    const base = await serve({ ensemble: 'current' });
    const r = await post(base, '/v2/models/ensemble/generate_stream', {
      text_input: 'x',
      max_tokens: 2,
      stream: true,
    });
    for (const d of sseData(r.text))
      expect(Object.keys(JSON.parse(d) as object).sort()).toEqual([
        'model_name',
        'model_version',
        'text_output',
      ]);
  });

  it("tensorrt_llm's gpt_model_path holds an engine config.json with the version and max_seq_len", async () => {
    const base = await serve();
    const { json } = await get(base, '/v2/models/tensorrt_llm/config');
    const params = json['parameters'] as Record<string, { string_value: string }>;
    const dir = params['gpt_model_path']?.string_value ?? '';
    const engine = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(engine).toMatchObject({ version: 'trtllm-sim-7', build_config: { max_seq_len: 1024 } });
    // Only parameters the stock tensorrt_llm model has.
    const stock = (JSON.parse(fixture('triton', 'tensorrt_llm-config.json')) as { parameters: object })
      .parameters;
    for (const k of Object.keys(params)) expect(Object.keys(stock)).toContain(k);
    expect(params['gpt_model_type']?.string_value).toBe('inflight_fused_batching');
  });

  it('configured model names are the only ones served; others are unknown as in Triton', async () => {
    const base = await serve({ models: { ensemble: 'llm', preprocessing: 'tok', tensorrtLlm: 'trt' } });
    expect((await get(base, '/v2/models/llm/config')).json['name']).toBe('llm');
    const steps = (
      (await get(base, '/v2/models/llm/config')).json['ensemble_scheduling'] as {
        step: { model_name: string }[];
      }
    ).step;
    expect(steps.map((s) => s.model_name)).toEqual(['tok', 'trt', 'postprocessing']);
    const unknown = await get(base, '/v2/models/ensemble/config');
    expect(unknown).toEqual({
      status: 400,
      json: { error: "Request for unknown model: 'ensemble' is not found" },
    });
  });
});
