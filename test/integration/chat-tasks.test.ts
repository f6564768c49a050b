/**
 * Chat and sampling on OrchQueue v1 (SPEC §17 §2.1): `messages` through the engine's own chat
 * template on real llama-server replicas, sampling fields in the determinism key, stop strings,
 * JSON-schema output, `finish_reason`, and the refusal of a field an engine cannot honour.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectValidResponse } from '../support/openapi-response.js';
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
const A = KEYS.alice;
const MESSAGES = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello.' },
];

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      tinyPool('tiny', await tinyModelPath(), { replicas: 2 }),
      simPool('tgi-sim', 'tgi'),
      simPool('embed-sim', 'vllm', {
        launch: { worker: 'sim', parallel: 2, extra_args: ['--task', 'embed'] },
      }),
    ],
  });
}, 120_000);
afterAll(async () => {
  await h?.close();
});

/** Runs a task to its end: its text, and the `end` payload. */
async function run(extra: Record<string, unknown>): Promise<{ text: string; end: Record<string, unknown> }> {
  const body = task('tiny', { prompt: undefined, messages: MESSAGES, seed: 11, max_tokens: 24, ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: A, body });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  const s = await readStream(h.url, body.task_id, { key: A });
  const end = s.events.at(-1);
  expect(end?.event).toBe('end');
  return {
    text: s.events
      .filter((e) => e.event === 'token')
      .map((e) => String(e.data['t']))
      .join(''),
    end: end?.data ?? {},
  };
}

describe('chat tasks on llama.cpp', () => {
  it("messages go through the model's template: prompt tokens are counted after it", async () => {
    const { end } = await run({});
    const words = MESSAGES.map((m) => m.content).join('');
    // The tiny model's byte vocabulary: the words alone would be this many tokens (plus BOS).
    expect(Number(end['tokens_in'])).toBeGreaterThan(words.length + 1);
    expect(end['finish_reason']).toMatch(/^(stop|length)$/);
  });

  it('sampling fields are part of the determinism key: same fields and seed, same stream', async () => {
    const a = await run({ temperature: 0.7, top_k: 20 });
    const b = await run({ temperature: 0.7, top_k: 20 });
    expect(a.text).toBe(b.text);
    const hotter = await run({ temperature: 1.5, top_k: 20 });
    const wider = await run({ temperature: 0.7, top_k: 200 });
    expect(hotter.text).not.toBe(a.text);
    expect(wider.text).not.toBe(a.text);
  });

  it('a stop string ends the text before it (finish_reason stop)', async () => {
    const full = await run({ max_tokens: 32 });
    const i = full.text.slice(1).search(/[A-Za-z0-9]/);
    expect(i).toBeGreaterThanOrEqual(0);
    const stop = full.text.charAt(i + 1);
    const stopped = await run({ max_tokens: 32, stop: [stop] });
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(stopped.end).toMatchObject({ finish_reason: 'stop', stop_reason: 'stop' });
  });

  it('response_format json_schema: the engine grammar makes the output parse and match', async () => {
    const { text } = await run({
      max_tokens: 96,
      messages: [{ role: 'user', content: 'n as JSON' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'n',
          schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
        },
      },
    });
    expect(Number.isInteger((JSON.parse(text) as { n: unknown }).n)).toBe(true);
  });

  it('finish_reason length at max_tokens', async () => {
    const { end } = await run({ max_tokens: 2 });
    expect(end).toMatchObject({ tokens_out: 2, finish_reason: 'length' });
  });
});

describe('refusals (nothing is enqueued)', () => {
  async function refused(
    body: Record<string, unknown>,
  ): Promise<{ code: string; message: string; engine?: string }> {
    const before = await enqueued();
    const r = await call(h.url, 'POST', '/v1/tasks', { key: A, body });
    expectValidResponse({
      method: 'POST',
      path: '/v1/tasks',
      status: r.status,
      headers: Object.fromEntries(r.headers.entries()),
      body: r.json,
    });
    expect(r.status).toBe(400);
    expect(await enqueued()).toBe(before);
    return r.json as { code: string; message: string; engine?: string };
  }
  async function enqueued(): Promise<number> {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    return [...text.matchAll(/^tasks_enqueued_total\{[^}]*\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  }

  it('a sampling field the engine has no parameter for names the field and the engine', async () => {
    const e = await refused(task('tgi-sim', { engine: 'tgi', min_p: 0.1 }));
    expect(e.code).toBe('INVALID_PARAMS');
    expect(e.engine).toBe('tgi');
    expect(e.message).toMatch(/^min_p: engine 'tgi' cannot honour it/);
  });

  it('prompt and messages together, and sampling fields on embeddings, are refused', async () => {
    const both = await refused(task('tiny', { messages: MESSAGES }));
    expect(both.code).toBe('INVALID_PARAMS');
    const emb = await refused(
      task('embed-sim', {
        engine: 'vllm',
        workload: 'embedding',
        prompt: undefined,
        inputs: ['x'],
        temperature: 0.5,
      }),
    );
    expect(emb.message).toMatch(/temperature|sampling/);
  });
});
