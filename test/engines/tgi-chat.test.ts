/**
 * Chat (TGI's Messages API), sampling fields, stop sequences, JSON grammars and tools through the
 * TGI adapter against the simulator's TGI dialect on real ports, and what the adapter refuses by
 * release.
 */
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatMessage, ToolDefinition } from '../../src/domain/sampling.js';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { TgiAdapter } from '../../src/engines/tgi/adapter.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { SIM_DEFAULTS, SimEngine } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';

const running: RunningSim[] = [];
const adapters: TgiAdapter[] = [];

afterAll(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
  await Promise.all(running.splice(0).map((s) => s.close()));
});

/** A simulated TGI of `version` and an adapter that has read its `/info`. */
async function tgi(version = 'sim-tgi-1'): Promise<{ adapter: TgiAdapter; base: string }> {
  const e = new SimEngine({ ...SIM_DEFAULTS, modelId: 'm', engineVersion: version, tokensPerSecond: 20_000 });
  const sim = await startSimServer({ dialect: 'tgi', engine: e, host: '127.0.0.1', port: 0 });
  running.push(sim);
  const base = `http://127.0.0.1:${sim.port}`;
  const adapter = new TgiAdapter({ baseUrl: base });
  adapters.push(adapter);
  await adapter.properties(AbortSignal.timeout(5_000));
  return { adapter, base };
}

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me a story.' },
];
const WEATHER: ToolDefinition = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', minLength: 2 },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'days'],
    },
  },
};
const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
  },
  required: ['name', 'age'],
};

const request = (r: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: '',
  messages: MESSAGES,
  maxTokens: 24,
  seed: 11,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: false,
  ...r,
});

async function run(a: TgiAdapter, r: Partial<GenerateRequest> = {}) {
  const events: EngineEvent[] = [];
  for await (const ev of a.generate(request(r), AbortSignal.timeout(10_000))) events.push(ev);
  const done = events.at(-1);
  if (done?.kind !== 'done') throw new Error('no done event');
  const toks = events.filter((e) => e.kind === 'tokens');
  return { text: toks.map((e) => e.text).join(''), counted: toks.reduce((n, e) => n + e.count, 0), done };
}

function refusal(f: () => unknown): OrchError {
  try {
    f();
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('TGI Messages API through the adapter', () => {
  it("chat turns stream text; prompt tokens are /chat_tokenize's count", async () => {
    const { adapter } = await tgi();
    const r = await run(adapter);
    expect(r.text).toHaveLength(24);
    expect(r.done).toMatchObject({ stopReason: 'length', tokensOut: 24 });
    const counted = await adapter.countChatTokens(
      { prompt: '', messages: MESSAGES },
      AbortSignal.timeout(5_000),
    );
    expect(counted).toBeGreaterThan(0);
    expect(r.done.tokensIn).toBe(counted);
    // Tools are part of the templated prompt.
    expect(
      await adapter.countChatTokens(
        { prompt: '', messages: MESSAGES, tools: [WEATHER] },
        AbortSignal.timeout(5_000),
      ),
    ).toBeGreaterThan(counted);
  });

  it('same seed and fields: the same stream; another seed or temperature: another', async () => {
    const { adapter } = await tgi();
    const a = await run(adapter);
    expect((await run(adapter)).text).toBe(a.text);
    expect((await run(adapter, { seed: 12 })).text).not.toBe(a.text);
    expect((await run(adapter, { sampling: { temperature: 0.3 } })).text).not.toBe(a.text);
    expect((await run(adapter, { sampling: { topP: 0.5 } })).text).not.toBe(a.text);
    expect((await run(adapter, { sampling: { frequencyPenalty: 0.5 } })).text).not.toBe(a.text);
    expect((await run(adapter, { sampling: { repeatPenalty: 1.3 } })).text).not.toBe(a.text);
  });

  it('a stop sequence ends the text before it (TGI keeps it; the adapter removes it)', async () => {
    const { adapter } = await tgi();
    const plain = (await run(adapter, { maxTokens: 40 })).text;
    const stop = plain.slice(12, 15);
    const cut = plain.indexOf(stop);
    const r = await run(adapter, { maxTokens: 40, stop: [stop] });
    expect(r.text).toBe(plain.slice(0, cut));
    expect(r.done.stopReason).toBe('stop');
    expect(r.counted).toBe(cut + stop.length);
  });

  it('response_format json_schema: the output parses and validates', async () => {
    const { adapter } = await tgi();
    const r = await run(adapter, {
      maxTokens: 200,
      responseFormat: { type: 'json_schema', json_schema: { name: 'person', schema: SCHEMA } },
    });
    const validate = new Ajv().compile(SCHEMA);
    const value: unknown = JSON.parse(r.text);
    expect(validate(value)).toBe(true);
    expect(r.done.stopReason).toBe('eos');
  });

  it('tools: a required call comes back assembled, with arguments valid for the tool', async () => {
    const { adapter } = await tgi();
    const r = await run(adapter, { maxTokens: 200, tools: [WEATHER], toolChoice: 'required' });
    expect(r.done.stopReason).toBe('tool_calls');
    const call = r.done.toolCalls?.[0];
    expect(call).toMatchObject({ id: '0', type: 'function', function: { name: 'get_weather' } });
    const validate = new Ajv().compile(WEATHER.function.parameters ?? {});
    expect(validate(JSON.parse(call?.function.arguments ?? ''))).toBe(true);
    expect(r.text).toBe('');
  });

  it('tool_choice none: plain text, no calls', async () => {
    const { adapter } = await tgi();
    const r = await run(adapter, { tools: [WEATHER], toolChoice: 'none' });
    expect(r.done.toolCalls).toBeUndefined();
    expect(r.done.stopReason).toBe('length');
    expect(r.text).toHaveLength(24);
  });
});

describe('TGI /generate_stream with the sampling fields', () => {
  const prompt = (r: Partial<GenerateRequest> = {}) =>
    request({ messages: undefined, prompt: 'Once upon a time', ...r });

  it('each field changes the stream; temperature 0 is greedy and accepted', async () => {
    const { adapter } = await tgi();
    const a = (await run(adapter, prompt())).text;
    expect((await run(adapter, prompt())).text).toBe(a);
    for (const sampling of [
      { temperature: 0.3 },
      { topK: 5 },
      { topP: 0.5 },
      { repeatPenalty: 1.2 },
      { frequencyPenalty: 0.4 },
    ])
      expect((await run(adapter, prompt({ sampling }))).text).not.toBe(a);
    expect(
      (await run(adapter, prompt({ sampling: { temperature: 0, topP: 1, topK: 0 } }))).text,
    ).toHaveLength(24);
  });

  it('a stop sequence ends the text before it', async () => {
    const { adapter } = await tgi();
    const plain = (await run(adapter, prompt({ maxTokens: 40 }))).text;
    const stop = plain.slice(20, 22);
    const r = await run(adapter, prompt({ maxTokens: 40, stop: [stop] }));
    expect(r.text).toBe(plain.slice(0, plain.indexOf(stop)));
    expect(r.done.stopReason).toBe('stop');
  });

  it('grammar: the output validates against the schema', async () => {
    const { adapter } = await tgi();
    const r = await run(
      adapter,
      prompt({ maxTokens: 200, responseFormat: { type: 'json_schema', json_schema: { schema: SCHEMA } } }),
    );
    expect(new Ajv().compile(SCHEMA)(JSON.parse(r.text))).toBe(true);
  });

  it('TGI answers 422 for what its validation refuses (top_p 1, temperature 0, properties-less grammar)', async () => {
    const { base } = await tgi('3.3.6');
    const post = (parameters: Record<string, unknown>) =>
      fetch(`${base}/generate_stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: 'x', parameters: { max_new_tokens: 2, ...parameters } }),
      });
    for (const p of [
      { top_p: 1 },
      { temperature: 0 },
      { grammar: { type: 'json', value: { type: 'object' } } },
    ]) {
      const res = await post(p);
      expect(res.status).toBe(422);
      expect(((await res.json()) as { error_type: string }).error_type).toBe('validation');
    }
  });
});

describe('TGI refusals name the field and the engine', () => {
  it('min_p and presence_penalty: no such parameter, on either route', async () => {
    const { adapter } = await tgi();
    for (const messages of [MESSAGES, undefined]) {
      const r = (sampling: GenerateRequest['sampling']) =>
        refusal(() => adapter.checkRequest(request({ messages, prompt: 'x', sampling })));
      expect(r({ minP: 0.1 })).toMatchObject({
        code: 'INVALID_PARAMS',
        message: expect.stringMatching(/^min_p: engine 'tgi'/),
      });
      expect(r({ presencePenalty: 0.5 }).message).toMatch(/^presence_penalty: engine 'tgi'/);
    }
    expect(refusal(() => adapter.checkRequest(request({ sampling: { topK: 5 } }))).message).toMatch(
      /^top_k: engine 'tgi'/,
    );
    expect(() =>
      adapter.checkRequest(request({ sampling: { temperature: 0.2, repeatPenalty: 1.1 } })),
    ).not.toThrow();
  });

  it('json_object: refused since v2.3.0 (grammars need properties), sent as {"type":"object"} before', async () => {
    const current = (await tgi('3.3.6')).adapter;
    const old = (await tgi('2.2.0')).adapter;
    const r = request({ messages: undefined, prompt: 'x', responseFormat: { type: 'json_object' } });
    expect(refusal(() => current.checkRequest(r)).message).toMatch(/^response_format: engine 'tgi'/);
    expect(() => old.checkRequest(r)).not.toThrow();
  });

  it('a release without /chat_tokenize (before v2.3.0) refuses messages, also when counting', async () => {
    const { adapter } = await tgi('2.2.0');
    expect(refusal(() => adapter.checkRequest(request())).message).toMatch(/^messages: engine 'tgi'/);
    await expect(
      adapter.countChatTokens({ prompt: '', messages: MESSAGES }, AbortSignal.timeout(5_000)),
    ).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('tools before v3.2.0, frequency_penalty on v1.4.0 and too many stop sequences are refused', async () => {
    const v31 = (await tgi('3.1.1')).adapter;
    expect(refusal(() => v31.checkRequest(request({ tools: [WEATHER] }))).message).toMatch(
      /^tools: engine 'tgi'/,
    );
    const v140 = (await tgi('1.4.0')).adapter;
    const native = request({ messages: undefined, prompt: 'x' });
    expect(
      refusal(() => v140.checkRequest({ ...native, sampling: { frequencyPenalty: 0.1 } })).message,
    ).toMatch(/^frequency_penalty: engine 'tgi'/);
    expect(refusal(() => v140.checkRequest({ ...native, stop: ['a', 'b', 'c', 'd', 'e'] })).message).toMatch(
      /^stop: engine 'tgi'.*at most 4/,
    );
    // generate checks against the release too: nothing is sent.
    await expect(
      (async () => {
        for await (const ev of v140.generate(
          { ...native, sampling: { frequencyPenalty: 0.1 } },
          AbortSignal.timeout(5_000),
        ))
          void ev;
      })(),
    ).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('tools with response_format are refused (TGI: mutually exclusive)', async () => {
    const { adapter } = await tgi();
    const r = request({
      tools: [WEATHER],
      responseFormat: { type: 'json_schema', json_schema: { schema: SCHEMA } },
    });
    expect(refusal(() => adapter.checkRequest(r)).message).toMatch(/^response_format: engine 'tgi'/);
  });
});
