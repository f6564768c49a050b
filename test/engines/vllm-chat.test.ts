/**
 * Chat, sampling fields, stop strings, structured outputs and tools through the vLLM adapter
 * against the simulator's vLLM dialect on real ports, and the adapter's refusals.
 */
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage, SamplingOptions, ToolDefinition } from '../../src/domain/sampling.js';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { VllmAdapter, type VllmAdapterOptions } from '../../src/engines/vllm/adapter.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { SIM_DEFAULTS, SimEngine, type SimEngineOptions } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';

const running: RunningSim[] = [];
const adapters: VllmAdapter[] = [];

async function serve(o: Partial<SimEngineOptions> = {}): Promise<string> {
  const e = new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'sim-vllm-1',
    tokensPerSecond: 20_000,
    ...o,
  });
  const sim = await startSimServer({ dialect: 'vllm', engine: e, host: '127.0.0.1', port: 0 });
  running.push(sim);
  return `http://127.0.0.1:${sim.port}`;
}

function adapterFor(baseUrl: string, o: Partial<VllmAdapterOptions> = {}): VllmAdapter {
  const a = new VllmAdapter({ baseUrl, model: 'm', slots: 4, ...o });
  adapters.push(a);
  return a;
}

afterAll(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
  await Promise.all(running.splice(0).map((s) => s.close()));
});

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

const request = (r: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: '',
  messages: MESSAGES,
  maxTokens: 24,
  seed: 11,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: false,
  ignoreEos: true,
  ...r,
});

async function run(a: VllmAdapter, r: Partial<GenerateRequest> = {}) {
  const events: EngineEvent[] = [];
  for await (const ev of a.generate(request(r), AbortSignal.timeout(10_000))) events.push(ev);
  const done = events.at(-1);
  if (done?.kind !== 'done') throw new Error('no done event');
  const toks = events.filter((e) => e.kind === 'tokens');
  return { text: toks.map((e) => e.text).join(''), counted: toks.reduce((n, e) => n + e.count, 0), done };
}

function refusal(a: VllmAdapter, r: Partial<GenerateRequest>): OrchError {
  try {
    a.checkRequest(request(r));
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('vLLM chat through the adapter (simulator)', () => {
  let plain: VllmAdapter;
  let tooled: VllmAdapter;
  let plainUrl: string;
  beforeAll(async () => {
    plainUrl = await serve();
    plain = adapterFor(plainUrl);
    const toolUrl = await serve({ toolCalling: { autoToolChoice: true, parser: 'hermes' } });
    tooled = adapterFor(toolUrl, { toolCalling: { autoToolChoice: true, parser: 'hermes' } });
  });

  it('messages → text; prompt tokens are what countChatTokens says; token counts add up', async () => {
    const r = await run(plain);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.done).toMatchObject({ tokensOut: 24, stopReason: 'length' });
    expect(r.counted).toBe(24);
    const counted = await plain.countChatTokens(
      { prompt: '', messages: MESSAGES },
      AbortSignal.timeout(10_000),
    );
    expect(r.done.tokensIn).toBe(counted);
    // Tools are part of the templated prompt.
    const withTools = await plain.countChatTokens(
      { prompt: '', messages: MESSAGES, tools: [WEATHER] },
      AbortSignal.timeout(10_000),
    );
    expect(withTools).toBeGreaterThan(counted);
  });

  it('same seed and parameters twice → the same text; another seed → another text', async () => {
    const a = await run(plain);
    const b = await run(plain);
    expect(b.text).toBe(a.text);
    expect((await run(plain, { seed: 12 })).text).not.toBe(a.text);
  });

  it('every sampling field changes the stream', async () => {
    const base = (await run(plain)).text;
    const changes: SamplingOptions[] = [
      { temperature: 0.3 },
      { topP: 0.5 },
      { topK: 5 },
      { minP: 0.1 },
      { repeatPenalty: 1.2 },
      { presencePenalty: 0.5 },
      { frequencyPenalty: 0.5 },
    ];
    for (const sampling of changes)
      expect((await run(plain, { sampling })).text, JSON.stringify(sampling)).not.toBe(base);
    // A field set to profile v1's own value is the profile: the same stream.
    expect((await run(plain, { sampling: { temperature: 0.8 } })).text).toBe(base);
  });

  it('a stop string ends the text before it, stopReason "stop"', async () => {
    const full = (await run(plain, { maxTokens: 40 })).text;
    const stop = full.slice(10, 12);
    const r = await run(plain, { maxTokens: 40, stop: [stop] });
    expect(r.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(r.done.stopReason).toBe('stop');
  });

  it('response_format json_schema → JSON that validates; json_object → a JSON object', async () => {
    const schema = WEATHER.function.parameters ?? {};
    const r = await run(plain, {
      maxTokens: 200,
      responseFormat: { type: 'json_schema', json_schema: { name: 'weather', schema } },
    });
    const validate = new Ajv({ strict: false }).compile(schema);
    expect(validate(JSON.parse(r.text)), r.text).toBe(true);
    expect(r.done.stopReason).toBe('eos');
    expect(r.counted).toBe(r.text.length);
    const o = await run(plain, { maxTokens: 200, responseFormat: { type: 'json_object' } });
    expect(JSON.parse(o.text)).toBeTypeOf('object');
    // The completions route takes it too.
    const c = await run(plain, {
      messages: undefined,
      prompt: 'Say JSON',
      maxTokens: 200,
      responseFormat: { type: 'json_object' },
    });
    expect(c.text).toBe(o.text);
  });

  it('tools with tool_choice "required" → a tool call whose arguments match the parameters', async () => {
    const r = await run(tooled, { tools: [WEATHER], toolChoice: 'required', maxTokens: 200 });
    expect(r.done.stopReason).toBe('tool_calls');
    expect(r.text).toBe('');
    const call = r.done.toolCalls?.[0];
    expect(call?.function.name).toBe('get_weather');
    expect(call?.id).toMatch(/^chatcmpl-tool-/);
    const validate = new Ajv({ strict: false }).compile(WEATHER.function.parameters ?? {});
    expect(validate(JSON.parse(call?.function.arguments ?? ''))).toBe(true);
    // A named function calls it as well.
    const named = await run(tooled, {
      tools: [WEATHER],
      toolChoice: { type: 'function', function: { name: 'get_weather' } },
      maxTokens: 200,
    });
    expect(named.done.toolCalls?.[0]?.function.arguments).toBe(call?.function.arguments);
  });

  it('tool_choice "auto": a call when the user names the tool, text otherwise', async () => {
    const asks: ChatMessage[] = [{ role: 'user', content: 'Use get_weather for Paris.' }];
    const r = await run(tooled, { messages: asks, tools: [WEATHER], maxTokens: 200 });
    expect(r.done.toolCalls?.map((c) => c.function.name)).toEqual(['get_weather']);
    const t = await run(tooled, { tools: [WEATHER] });
    expect(t.done.toolCalls).toBeUndefined();
    expect(t.text.length).toBeGreaterThan(0);
  });

  it('the simulated vLLM without tool flags answers 400 with vLLM’s message', async () => {
    const res = await fetch(`${plainUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'm',
        messages: MESSAGES,
        tools: [WEATHER],
        tool_choice: 'auto',
        stream: true,
      }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toBe(
      '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    );
  });
});

describe('vLLM checkRequest', () => {
  const a = new VllmAdapter({ baseUrl: 'http://127.0.0.1:1', model: 'm', slots: 1 });
  afterAll(() => a.close());

  it('accepts every sampling field, stop, both JSON formats and messages', () => {
    expect(() =>
      a.checkRequest(
        request({
          sampling: {
            temperature: 0.1,
            topP: 0.9,
            topK: 3,
            minP: 0.1,
            repeatPenalty: 1.1,
            presencePenalty: 1,
            frequencyPenalty: 1,
          },
          stop: ['x'],
          responseFormat: { type: 'json_schema', json_schema: { schema: {} } },
        }),
      ),
    ).not.toThrow();
    expect(() => a.checkRequest(request({ responseFormat: { type: 'json_object' } }))).not.toThrow();
  });

  it('tools without a tool parser are refused, naming tools, the engine and the missing flags', () => {
    const err = refusal(a, { tools: [WEATHER] });
    expect(err).toMatchObject({ code: 'INVALID_PARAMS', engine: 'vllm' });
    expect(err.message).toMatch(/^tools: engine 'vllm'/);
    expect(err.message).toContain('--enable-auto-tool-choice and --tool-call-parser');
    const required = refusal(a, { tools: [WEATHER], toolChoice: 'required' });
    expect(required.message).toContain('--tool-call-parser');
    expect(required.message).not.toContain('--enable-auto-tool-choice');
    // tool_choice "none" needs no parser.
    expect(() => a.checkRequest(request({ tools: [WEATHER], toolChoice: 'none' }))).not.toThrow();
  });

  it('a parser without --enable-auto-tool-choice serves required tools but refuses "auto"', () => {
    const b = new VllmAdapter({
      baseUrl: 'http://127.0.0.1:1',
      model: 'm',
      slots: 1,
      toolCalling: { autoToolChoice: false, parser: 'hermes' },
    });
    expect(() => b.checkRequest(request({ tools: [WEATHER], toolChoice: 'required' }))).not.toThrow();
    expect(refusal(b, { tools: [WEATHER] }).message).toContain('--enable-auto-tool-choice');
    void b.close();
  });

  it('a pooling (embedding-only) vLLM refuses messages', async () => {
    const byArgs = new VllmAdapter({ baseUrl: 'http://127.0.0.1:1', model: 'm', slots: 1, pooling: true });
    expect(refusal(byArgs, {}).message).toMatch(/^messages: engine 'vllm'.*pooling/);
    void byArgs.close();
    // Learned from the engine itself once its properties were read.
    const embedder = adapterFor(await serve({ servedTask: 'embed' }));
    await embedder.properties(AbortSignal.timeout(10_000));
    expect(refusal(embedder, {}).message).toMatch(/^messages:/);
    expect(() => embedder.checkRequest(request({ messages: undefined, prompt: 'x' }))).not.toThrow();
  });
});
