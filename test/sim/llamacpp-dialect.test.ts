/**
 * The simulator's llama.cpp dialect against transcripts of the real pinned llama-server
 * (test/fixtures/llamacpp/README.md): frame shapes, prompt-cache counts, end-of-sequence, stop
 * strings, both mid-stream error framings, embeddings and their refusals, metric names.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SIM_DEFAULTS, SimEngine, type SimEngineOptions } from '../../src/sim/sim-engine.js';
import type { LlamacppSimOptions } from '../../src/sim/dialects/llamacpp.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';
import { parseSse } from '../../src/util/sse-parser.js';
import { fixture, shape, sseData } from './sim-fixture-shape.js';

const running: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

const engine = (o: Partial<SimEngineOptions> = {}) =>
  new SimEngine({ ...SIM_DEFAULTS, modelId: 'm', engineVersion: 'b1-sim', tokensPerSecond: 5_000, ...o });

async function serve(e: SimEngine, llamacpp: LlamacppSimOptions = {}): Promise<string> {
  const sim = await startSimServer({ dialect: 'llamacpp', engine: e, host: '127.0.0.1', port: 0, llamacpp });
  running.push(sim);
  return `http://127.0.0.1:${sim.port}`;
}

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

type Frame = Record<string, unknown>;
async function frames(base: string, body: Record<string, unknown>): Promise<Frame[]> {
  const text = await (
    await post(base, '/completion', {
      prompt: 'Once upon a time',
      n_predict: 16,
      stream: true,
      seed: 7,
      ...body,
    })
  ).text();
  return sseData(text).map((d) => JSON.parse(d) as Frame);
}
const fixtureFrames = (name: string): Frame[] =>
  sseData(fixture('llamacpp', name)).map((d) => JSON.parse(d) as Frame);

/** Every key of `sim` exists in `real` with the same shape (the real server sends more). */
function expectShapeWithin(sim: unknown, real: unknown, path = '$'): void {
  if (sim !== null && typeof sim === 'object' && !Array.isArray(sim)) {
    expect(real, path).toBeTypeOf('object');
    for (const [k, v] of Object.entries(sim)) {
      expect(real as object, `${path}.${k}`).toHaveProperty([k]);
      expectShapeWithin(v, (real as Record<string, unknown>)[k], `${path}.${k}`);
    }
    return;
  }
  if (Array.isArray(sim)) {
    expect(Array.isArray(real), path).toBe(true);
    const [s0] = sim as unknown[];
    const [r0] = real as unknown[];
    if (s0 !== undefined && r0 !== undefined) expectShapeWithin(s0, r0, `${path}[0]`);
    return;
  }
  expect(shape(sim), path).toEqual(shape(real));
}

describe('llama.cpp dialect against the pinned llama-server', () => {
  it('partial and final frames carry fields the real server sends, with the same types', async () => {
    const base = await serve(engine());
    const sim = await frames(base, { n_predict: 4 });
    const real = fixtureFrames('completion-stream.sse');
    expectShapeWithin(sim[0], real[0]);
    expectShapeWithin(sim.at(-1), real.at(-1));
    expect(sim.at(-1)).toMatchObject({
      stop: true,
      stop_type: 'limit',
      stopping_word: '',
      tokens_predicted: 4,
    });
  });

  it('warm prompt cache: tokens_evaluated is the whole prompt, timings.prompt_n only the computed part', async () => {
    const real = fixtureFrames('completion-stream-warm.sse').at(-1) as Frame & {
      timings: { cache_n: number; prompt_n: number };
    };
    // The real server: 18 prompt tokens, 17 from the cache, the last one computed again.
    expect(real['tokens_evaluated']).toBe(18);
    expect(real.timings).toMatchObject({ cache_n: 17, prompt_n: 1 });
    const base = await serve(engine());
    const cold = (await frames(base, { cache_prompt: true })).at(-1) as typeof real;
    const warm = (await frames(base, { cache_prompt: true })).at(-1) as typeof real;
    const n = cold['tokens_evaluated'] as number;
    expect(cold.timings).toMatchObject({ cache_n: 0, prompt_n: n });
    expect(warm['tokens_evaluated']).toBe(n);
    expect(warm.timings).toMatchObject({ cache_n: n - 1, prompt_n: 1 });
  });

  it('end of sequence: the EOS token is counted, sends no text, and the stop type is eos', async () => {
    const real = fixtureFrames('completion-stream-eos.sse');
    expect(real[0]).toMatchObject({ content: '', tokens: [2], tokens_predicted: 1 });
    expect(real.at(-1)).toMatchObject({ stop: true, stop_type: 'eos', tokens_predicted: 1 });
    const base = await serve(engine({ eosProbability: 1 }));
    const sim = await frames(base, {});
    expect(sim).toHaveLength(2);
    expect(sim[0]).toMatchObject({ content: '', tokens: [2], tokens_predicted: 1 });
    expect(sim.at(-1)).toMatchObject({ stop: true, stop_type: 'eos', tokens_predicted: 1 });
    // ignore_eos generates on to n_predict, as llama-server does.
    const ignoring = await frames(base, { ignore_eos: true, n_predict: 5 });
    expect(ignoring.at(-1)).toMatchObject({ stop_type: 'limit', tokens_predicted: 5 });
  });

  it('stop strings: held back while they may begin, never sent, stop type word with the stopping word', async () => {
    const real = fixtureFrames('completion-stream-stop-word.sse');
    const realText = real.map((f) => f['content']).join('');
    expect(realText).not.toContain('&');
    expect(real.at(-1)).toMatchObject({ stop_type: 'word', stopping_word: '&n' });
    // The frame of "&" (token 41) holds its text back until "n" shows it was the stop string.
    expect(real.find((f) => (f['tokens'] as number[])[0] === 41)).toMatchObject({ content: '' });

    const base = await serve(engine());
    const free = (await frames(base, { n_predict: 12 })).slice(0, -1).map((f) => f['content'] as string);
    const whole = free.join('');
    const stop = whole.slice(4, 6);
    const stopped = await frames(base, { n_predict: 12, stop: [stop] });
    const text = stopped.map((f) => f['content']).join('');
    expect(text).toBe(whole.slice(0, whole.indexOf(stop)));
    expect(stopped.at(-1)).toMatchObject({ stop_type: 'word', stopping_word: stop });
    // One frame per token, the held one empty, as in the real transcript.
    const idx = whole.indexOf(stop);
    expect(stopped.slice(0, -1)).toHaveLength(idx + stop.length);
    expect(stopped[idx]).toMatchObject({ content: '' });
  });

  it('a mid-stream error in the pinned framing: a data frame with the error object, then the end', async () => {
    const real = parseSse(fixture('llamacpp', 'completion-stream-error.sse')).at(-1);
    expect(real?.event).toBeUndefined();
    expect(JSON.parse(real?.data ?? '')).toEqual({
      error: { code: 500, message: 'Context size has been exceeded.', type: 'server_error' },
    });
    const e = engine();
    e.faults = { oomAfterTokens: 2 };
    const base = await serve(e);
    const sim = parseSse(await (await post(base, '/completion', { prompt: 'x', stream: true })).text());
    expect(sim.at(-1)?.event).toBeUndefined();
    expect(JSON.parse(sim.at(-1)?.data ?? '')).toMatchObject({ error: { code: 500, type: 'server_error' } });
  });

  it('a mid-stream error in the older framing: an `error:` SSE field holding the error object', async () => {
    const e = engine();
    e.faults = { oomAfterTokens: 2 };
    const base = await serve(e, { streamErrorField: true });
    const text = await (await post(base, '/completion', { prompt: 'x', stream: true })).text();
    const last = text.trimEnd().split('\n').at(-1) ?? '';
    const fixtureLast =
      fixture('llamacpp', 'completion-stream-error-field.sse').trimEnd().split('\n').at(-1) ?? '';
    expect(last.startsWith('error: ')).toBe(true);
    expect(shape(JSON.parse(last.slice(7)))).toEqual(shape(JSON.parse(fixtureLast.slice(7))));
    // A standard SSE reader ignores the field: that is why it used to be dropped.
    expect(parseSse(text).every((r) => !r.data.includes('out of memory'))).toBe(true);
  });

  it('embeddings: refusals word for word, the OpenAI answer in the shape of the real one', async () => {
    const off = await serve(engine());
    expect(await (await post(off, '/v1/embeddings', { input: 'x' })).json()).toEqual(
      JSON.parse(fixture('llamacpp', 'embeddings-501.json')),
    );
    expect(await (await post(off, '/rerank', { query: 'q', documents: ['d'] })).json()).toEqual(
      JSON.parse(fixture('llamacpp', 'rerank-501.json')),
    );
    const noPooling = await serve(engine(), { embeddings: true });
    expect(await (await post(noPooling, '/v1/embeddings', { input: 'x' })).json()).toEqual(
      JSON.parse(fixture('llamacpp', 'embeddings-pooling-none.json')),
    );
    const on = await serve(engine(), { embeddings: true, pooling: 'mean' });
    expect(await (await post(on, '/v1/embeddings', {})).json()).toEqual(
      JSON.parse(fixture('llamacpp', 'embeddings-400.json')),
    );
    const r = (await (await post(on, '/v1/embeddings', { input: ['hello', 'world'] })).json()) as {
      data: { embedding: number[] }[];
    };
    expect(shape(r)).toEqual(shape(JSON.parse(fixture('llamacpp', 'embeddings.json'))));
    expect(r.data).toHaveLength(2);
    // Completions are still served next to embeddings, as by the pinned server.
    expect((await frames(on, { n_predict: 2 })).at(-1)).toMatchObject({ stop: true, tokens_predicted: 2 });
  });

  it('metrics: only names the pinned build exports (no KV-usage gauge); /props keys as the real ones', async () => {
    const base = await serve(engine());
    await frames(base, { cache_prompt: true });
    await frames(base, { cache_prompt: true });
    const names = (text: string) =>
      new Set(
        text
          .split('\n')
          .flatMap((l) => (/^(llamacpp:\w+)\s/.exec(l)?.[1] ? [/^(llamacpp:\w+)/.exec(l)?.[1]] : [])),
      );
    const real = names(fixture('llamacpp', 'metrics.txt'));
    const simText = await (await fetch(`${base}/metrics`)).text();
    const sim = names(simText);
    expect(sim.size).toBeGreaterThan(0);
    for (const n of sim) expect(real, String(n)).toContain(n);
    expect(simText).not.toContain('kv_cache_usage_ratio');
    // Prompt tokens exclude cached ones, which are counted apart.
    expect(simText).toMatch(/^llamacpp:prompt_tokens_cached_total [1-9]/m);
    const props = (await (await fetch(`${base}/props`)).json()) as Record<string, unknown>;
    expectShapeWithin(props, JSON.parse(fixture('llamacpp', 'props.json')));
    expect(props['is_sleeping']).toBe(false);
  });
});
