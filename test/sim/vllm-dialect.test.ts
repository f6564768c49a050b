/**
 * The simulator's vLLM dialect against the vLLM fixtures (shapes derived from vLLM's source,
 * test/fixtures/vllm/README.md), for both release lines the simulator speaks, and its loading,
 * end-of-sequence and stop-string behaviour.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/pool/free-port.js';
import { SIM_DEFAULTS, SimEngine, type SimEngineOptions } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';
import { expectShape, fixture, jsonShape, shape, sseData } from './sim-fixture-shape.js';

const running: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

function engine(o: Partial<SimEngineOptions> = {}): SimEngine {
  return new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'sim-vllm-1',
    tokensPerSecond: 5_000,
    ...o,
  });
}

async function serve(e: SimEngine, port = 0): Promise<string> {
  const sim = await startSimServer({ dialect: 'vllm', engine: e, host: '127.0.0.1', port });
  running.push(sim);
  return `http://127.0.0.1:${sim.port}`;
}

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const completion = (o: Record<string, unknown> = {}) => ({
  model: 'm',
  prompt: 'Hello',
  max_tokens: 12,
  seed: 5,
  stream: true,
  stream_options: { include_usage: true, continuous_usage_stats: true },
  ...o,
});

async function streamOf(base: string, o: Record<string, unknown> = {}) {
  const text = await (await post(base, '/v1/completions', completion(o))).text();
  const data = sseData(text);
  const chunks = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Record<string, unknown>);
  return { text, data, chunks };
}

type Choice = { text: string; finish_reason: string | null; stop_reason: unknown };
const choiceOf = (c: Record<string, unknown>) => (c['choices'] as Choice[])[0];

describe('vLLM dialect: wire shapes from the source', () => {
  it('stream chunks, the usage chunk and [DONE] have the shapes of the fixture', async () => {
    const base = await serve(engine());
    const { data, chunks } = await streamOf(base);
    const want = sseData(fixture('vllm', 'completion-stream.sse')).filter((d) => d !== '[DONE]');
    expectShape(shape(chunks[0]), jsonShape(want[0] ?? ''));
    expectShape(shape(chunks.at(-1)), jsonShape(want.at(-1) ?? ''));
    expect(data.at(-1)).toBe('[DONE]');
  });

  it('current release: HTTP errors nested, a dead engine core mid-stream as the ErrorResponse, then [DONE]', async () => {
    const e = engine({ engineVersion: '0.15.1' });
    const base = await serve(e);
    const tooLong = await post(base, '/v1/completions', completion({ max_tokens: 100_000 }));
    expect(tooLong.status).toBe(400);
    expectShape(jsonShape(await tooLong.text()), jsonShape(fixture('vllm', 'error-400.json')));
    e.faults = { oomAfterTokens: 2 };
    const { data } = await streamOf(base);
    const want = sseData(fixture('vllm', 'error-stream.sse'));
    expect(data.at(-2)).toBe(want.at(-2));
    expect(data.at(-1)).toBe('[DONE]');
  });

  it('0.7 to 0.10: an engine failure mid-stream is an event in the flat shape, typed 400', async () => {
    const e = engine({ engineVersion: '0.9.2' });
    const base = await serve(e);
    e.faults = { oomAfterTokens: 2 };
    const { data } = await streamOf(base);
    expect(data.at(-2)).toBe(sseData(fixture('vllm', 'error-stream-0.9.sse')).at(-2));
    expect(data.at(-1)).toBe('[DONE]');
  });

  it('before 0.7: flat HTTP errors; an engine failure cuts the stream (no error event, no [DONE])', async () => {
    const e = engine({ engineVersion: '0.6.1.post2' });
    const base = await serve(e);
    const tooLong = await post(base, '/v1/completions', completion({ max_tokens: 100_000 }));
    expectShape(jsonShape(await tooLong.text()), jsonShape(fixture('vllm', 'error-400-legacy.json')));
    e.faults = { oomAfterTokens: 2 };
    const res = await post(base, '/v1/completions', completion());
    await expect(res.text()).rejects.toThrow();
  });

  it('the only overload answer is the scaling middleware 503', async () => {
    const e = engine();
    const base = await serve(e);
    e.faults = { refuse: true };
    const res = await post(base, '/v1/completions', completion());
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(fixture('vllm', 'error-503-scaling.json').trim());
  });

  it('embeddings only for a pooling model: a generating one answers an error body (200 since 0.10.1)', async () => {
    const gen = await serve(engine());
    const refused = await post(gen, '/v1/embeddings', { model: 'm', input: ['a'] });
    expect(refused.status).toBe(200);
    expectShape(jsonShape(await refused.text()), jsonShape(fixture('vllm', 'embeddings-unsupported.json')));
    const legacy = await serve(engine({ engineVersion: '0.6.4' }));
    expect((await post(legacy, '/v1/embeddings', { model: 'm', input: ['a'] })).status).toBe(400);
    const embed = await serve(engine({ servedTask: 'embed' }));
    const ok = await post(embed, '/v1/embeddings', { model: 'm', input: ['a', 'b'] });
    expectShape(jsonShape(await ok.text()), jsonShape(fixture('vllm', 'embeddings.json')));
    const noGen = await post(embed, '/v1/completions', completion());
    expect(noGen.status).toBe(400);
    expect(await noGen.text()).toContain('does not support Completions API');
  });

  it("metrics: the release's KV gauge name and the cache config with prefix caching", async () => {
    const current = await (await fetch(`${await serve(engine())}/metrics`)).text();
    expect(current).toMatch(/^vllm:kv_cache_usage_perc\{/m);
    expect(current).toMatch(/^vllm:cache_config_info\{[^}]*enable_prefix_caching="True"/m);
    const off = await (
      await fetch(`${await serve(engine({ engineVersion: '0.6.4', prefixCaching: false }))}/metrics`)
    ).text();
    expect(off).toMatch(/^vllm:gpu_cache_usage_perc\{/m);
    expect(off).toMatch(/enable_prefix_caching="False"/);
  });
});

describe('vLLM dialect: loading, end-of-sequence, stop strings', () => {
  it('refuses connections until the model is loaded, then serves', async () => {
    const port = await freePort();
    const e = engine();
    e.faults = { loadingUntilMs: Date.now() + 600_000 };
    const started = serve(e, port);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    e.faults = {};
    const base = await started;
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('a runtime "loading" fault is refused: vLLM has no loading answer once it listens', async () => {
    const base = await serve(engine());
    const res = await post(base, '/__sim/faults', { loading_ms: 1_000 });
    expect(res.status).toBe(400);
  });

  it('ends at a seeded end-of-sequence: finish "stop", stop_reason null, the EOS token counted but not sent', async () => {
    const base = await serve(engine({ eosProbability: 0.2 }));
    const { chunks } = await streamOf(base, { max_tokens: 200 });
    const last = chunks.at(-2) ?? {};
    expect(choiceOf(last)).toMatchObject({ finish_reason: 'stop', stop_reason: null, text: '' });
    const usage = chunks.at(-1)?.['usage'] as { completion_tokens: number };
    expect(usage.completion_tokens).toBeLessThan(200);
    expect(usage.completion_tokens).toBe(chunks.length - 1);
    const again = await streamOf(base, { max_tokens: 200 });
    expect(again.chunks.length).toBe(chunks.length);
    const ignored = await streamOf(base, { max_tokens: 200, ignore_eos: true });
    expect((ignored.chunks.at(-1)?.['usage'] as { completion_tokens: number }).completion_tokens).toBe(200);
  });

  it('ends at a stop string, which is not sent, with stop_reason the string', async () => {
    const base = await serve(engine());
    const plain = (await streamOf(base, { max_tokens: 40 })).chunks
      .map((c) => choiceOf(c)?.text ?? '')
      .join('');
    const stop = plain.slice(10, 12);
    const { chunks } = await streamOf(base, { max_tokens: 40, stop: [stop] });
    const text = chunks.map((c) => choiceOf(c)?.text ?? '').join('');
    expect(text).toBe(plain.slice(0, plain.indexOf(stop)));
    expect(choiceOf(chunks.at(-2) ?? {})).toMatchObject({ finish_reason: 'stop', stop_reason: stop });
  });
});
