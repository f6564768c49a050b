/**
 * The simulator's TGI dialect against the TGI fixtures (shapes derived from TGI's source,
 * test/fixtures/tgi/README.md) for releases before and since v2.3.0, and its metrics, loading,
 * end-of-sequence and stop-sequence behaviour.
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
    engineVersion: 'sim-tgi-1',
    tokensPerSecond: 5_000,
    ...o,
  });
}

async function serve(e: SimEngine, port = 0): Promise<string> {
  const sim = await startSimServer({ dialect: 'tgi', engine: e, host: '127.0.0.1', port });
  running.push(sim);
  return `http://127.0.0.1:${sim.port}`;
}

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

interface StreamEvent {
  index: number;
  token: { id: number; text: string; special: boolean };
  generated_text: string | null;
  details: Record<string, unknown> | null;
}

async function streamOf(base: string, parameters: Record<string, unknown> = {}): Promise<StreamEvent[]> {
  const res = await post(base, '/generate_stream', {
    inputs: 'Hello',
    parameters: { max_new_tokens: 8, seed: 3, details: true, ...parameters },
  });
  return sseData(await res.text()).map((d) => JSON.parse(d) as StreamEvent);
}

const lastOf = (name: string) => JSON.parse(sseData(fixture('tgi', name)).at(-1) ?? '{}') as StreamEvent;

describe('TGI dialect: wire shapes by release', () => {
  it('v3 (and any release from 2.3.0): /info and the final stream event with input_length', async () => {
    const base = await serve(engine({ engineVersion: '3.0.1' }));
    expectShape(
      jsonShape(await (await fetch(`${base}/info`)).text()),
      jsonShape(fixture('tgi', 'info.json')),
    );
    const evs = await streamOf(base);
    expectShape(shape(evs[0]), jsonShape(sseData(fixture('tgi', 'generate-stream.sse'))[0] ?? ''));
    expectShape(
      shape(evs.at(-1)?.details),
      shape({ ...lastOf('generate-stream.sse').details, finish_reason: 'x' }),
    );
    expect(evs.at(-1)?.details).toMatchObject({ finish_reason: 'length', generated_tokens: 8 });
  });

  it('1.4.5: the 1.x /info and a final event without input_length', async () => {
    const base = await serve(engine({ engineVersion: '1.4.5' }));
    expectShape(
      jsonShape(await (await fetch(`${base}/info`)).text()),
      jsonShape(fixture('tgi', 'info-1x.json')),
    );
    const details = (await streamOf(base)).at(-1)?.details;
    expect(Object.keys(details ?? {}).sort()).toEqual(
      Object.keys(lastOf('generate-stream-1x.sse').details ?? {}).sort(),
    );
    expect(details).not.toHaveProperty('input_length');
  });

  it('before 1.4.0 there is no /tokenize', async () => {
    const base = await serve(engine({ engineVersion: '1.3.4' }));
    expect((await post(base, '/tokenize', { inputs: 'x' })).status).toBe(404);
  });

  it('metrics: token counts as histograms under the documented names, counters without _total', async () => {
    const base = await serve(engine());
    await streamOf(base);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^# TYPE tgi_request_generated_tokens histogram$/m);
    expect(text).toMatch(/^tgi_request_generated_tokens_count 1$/m);
    expect(text).toMatch(/^tgi_request_generated_tokens_sum 8$/m);
    expect(text).toMatch(/^# TYPE tgi_request_input_length histogram$/m);
    expect(text).toMatch(/^tgi_request_input_length_bucket\{le="\+Inf"\} 1$/m);
    expect(text).toMatch(/^tgi_request_success 1$/m);
    expect(text).not.toMatch(/_total\b/);
  });
});

describe('TGI dialect: loading, end-of-sequence, stop sequences', () => {
  it('refuses connections until the shards are loaded, then serves', async () => {
    const port = await freePort();
    const e = engine();
    e.faults = { loadingUntilMs: Date.now() + 600_000 };
    const started = serve(e, port);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    e.faults = {};
    expect((await fetch(`${await started}/health`)).status).toBe(200);
  });

  it('ends at a seeded end-of-sequence: the special token is streamed, finish_reason eos_token', async () => {
    const base = await serve(engine({ eosProbability: 0.2 }));
    const evs = await streamOf(base, { max_new_tokens: 200 });
    const last = evs.at(-1);
    expect(last?.token).toMatchObject({ special: true, text: '</s>', id: 2 });
    expect(last?.details).toMatchObject({ finish_reason: 'eos_token', generated_tokens: evs.length });
    expect(evs.length).toBeLessThan(200);
    expect(last?.generated_text).toBe(
      evs
        .slice(0, -1)
        .map((e) => e.token.text)
        .join(''),
    );
  });

  it('ends at a stop sequence, which stays in the text', async () => {
    const base = await serve(engine());
    const plain = (await streamOf(base, { max_new_tokens: 40 })).map((e) => e.token.text).join('');
    const stop = plain.slice(10, 12);
    const evs = await streamOf(base, { max_new_tokens: 40, stop: [stop] });
    expect(evs.at(-1)?.details).toMatchObject({ finish_reason: 'stop_sequence' });
    expect(evs.at(-1)?.generated_text).toBe(plain.slice(0, plain.indexOf(stop) + stop.length));
  });
});
