/**
 * Engine API keys (SPEC §11), as the engines check them: the simulator started with a key (in
 * the engine's own variable, as pool launches hand it over) refuses what the real engine refuses,
 * with the real engine's status and body; the llama.cpp dialect is checked against the real
 * llama-server. Every adapter sends its pool's key, so the pool still works end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import type { GenerateRequest } from '../../src/engines/adapter.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, tinyModelPath, tinyPool, until } from '../support/harness.js';

const KEY = 'engine-key-Zm9vYmFy';
const engines: EngineUnderTest[] = [];

async function start(raw: RawPool): Promise<EngineUnderTest> {
  const e = await startEngine(raw);
  engines.push(e);
  await until(async () => {
    try {
      return (await e.adapter.probe(AbortSignal.timeout(2_000))).ready;
    } catch {
      return false;
    }
  }, 60_000);
  return e;
}

const keyed = (id: string, engine: RawPool['engine']) =>
  simPool(id, engine, { launch: { worker: 'sim', parallel: 1, api_key: KEY } });

async function get(
  url: string,
  opts: { method?: string; key?: string; header?: string; body?: unknown } = {},
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key !== undefined)
    headers[opts.header ?? 'authorization'] = opts.header ? opts.key : `Bearer ${opts.key}`;
  const res = await fetch(url, {
    method: opts.method ?? 'GET',
    headers,
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  return { status: res.status, text: await res.text() };
}

let llama: EngineUnderTest;
let vllm: EngineUnderTest;
let tgi: EngineUnderTest;
let real: EngineUnderTest;

beforeAll(async () => {
  const model = await tinyModelPath();
  const base = tinyPool('auth-real', model);
  [llama, vllm, tgi, real] = await Promise.all([
    start(keyed('auth-llama', 'llamacpp')),
    start(keyed('auth-vllm', 'vllm')),
    start(keyed('auth-tgi', 'tgi')),
    start({ ...base, launch: { ...base.launch, api_key: KEY } }),
  ]);
}, 120_000);
afterAll(async () => {
  await Promise.all(engines.map((e) => e.stop()));
});

describe('engine API keys in the simulator, as the real engines check them', () => {
  it('llama.cpp: everything but /health needs the key; the refusal is byte for byte the real llama-server’s', async () => {
    for (const e of [llama, real]) {
      expect((await get(`${e.baseUrl}/health`)).status).toBe(200);
      expect((await get(`${e.baseUrl}/v1/health`)).status).toBe(200);
      for (const path of ['/props', '/slots', '/metrics', '/v1/models'])
        expect((await get(`${e.baseUrl}${path}`)).status, `${path} without a key`).toBe(401);
      expect((await get(`${e.baseUrl}/props`, { key: 'wrong' })).status).toBe(401);
      expect((await get(`${e.baseUrl}/props`, { key: KEY })).status).toBe(200);
      expect((await get(`${e.baseUrl}/props`, { key: KEY, header: 'x-api-key' })).status).toBe(200);
    }
    const refusal = async (e: EngineUnderTest) =>
      get(`${e.baseUrl}/completion`, { method: 'POST', body: { prompt: 'x', n_predict: 1 } });
    const [sim, engine] = await Promise.all([refusal(llama), refusal(real)]);
    expect(sim).toEqual(engine);
    expect(JSON.parse(engine.text)).toEqual({
      error: { message: 'Invalid API Key', type: 'authentication_error', code: 401 },
    });
  });

  it('vLLM: `/v1/*` needs the key (401 {"error":"Unauthorized"}); /health, /version, /metrics stay open', async () => {
    expect(await get(`${vllm.baseUrl}/v1/models`)).toEqual({ status: 401, text: '{"error":"Unauthorized"}' });
    expect((await get(`${vllm.baseUrl}/v1/models`, { key: KEY })).status).toBe(200);
    for (const path of ['/health', '/version', '/metrics'])
      expect((await get(`${vllm.baseUrl}${path}`)).status, path).toBe(200);
  });

  it('TGI: the generation routes and /tokenize need the key (a bare 401); /health and /info stay open', async () => {
    for (const path of ['/generate', '/generate_stream', '/tokenize', '/v1/completions'])
      expect(await get(`${tgi.baseUrl}${path}`, { method: 'POST', body: { inputs: 'x' } }), path).toEqual({
        status: 401,
        text: '',
      });
    expect(
      (await get(`${tgi.baseUrl}/tokenize`, { method: 'POST', key: KEY, body: { inputs: 'x' } })).status,
    ).toBe(200);
    for (const path of ['/health', '/info'])
      expect((await get(`${tgi.baseUrl}${path}`)).status, path).toBe(200);
  });

  it('the fault-injection endpoint of a keyed simulator needs the key too', async () => {
    expect((await get(`${vllm.baseUrl}/__sim/state`)).status).toBe(401);
    expect((await get(`${vllm.baseUrl}/__sim/state`, { key: KEY })).status).toBe(200);
  });

  it('each adapter sends its pool’s key: tokens stream from every keyed engine', async () => {
    for (const e of [llama, vllm, tgi, real]) {
      const req: GenerateRequest = {
        prompt: 'hello',
        maxTokens: 2,
        seed: 1,
        determinism: 'strict',
        samplerProfileVersion: 'v1',
        cachePrompt: false,
        ignoreEos: true,
      };
      const kinds: string[] = [];
      for await (const ev of e.adapter.generate(req, AbortSignal.timeout(30_000))) kinds.push(ev.kind);
      expect(kinds, `${e.engine} ${e.baseUrl}`).toContain('tokens');
      expect(kinds.at(-1)).toBe('done');
    }
  });
});
