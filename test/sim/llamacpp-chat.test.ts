/**
 * The simulated llama-server's chat and sampling surface, over HTTP: every sampling field of
 * `/completion` in the determinism key, stop strings, `json_schema`, `/apply-template`, and
 * tool calls on `/v1/chat/completions` (ggml-org/llama.cpp de3ff815 `tools/server/`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { LlamacppSimOptions } from '../../src/sim/dialects/llamacpp.js';
import { SIM_DEFAULTS, SimEngine, type SimEngineOptions } from '../../src/sim/sim-engine.js';
import { outputForSchema } from '../../src/sim/schema-output.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';
import { sseData } from './sim-fixture-shape.js';

const running: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function serve(o: Partial<SimEngineOptions> = {}, llamacpp: LlamacppSimOptions = {}): Promise<string> {
  const e = new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'b1-sim',
    tokensPerSecond: 5_000,
    ...o,
  });
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

type Json = Record<string, unknown>;
const json = async (r: Response) => (await r.json()) as Json;

const completion = async (base: string, body: Json) =>
  json(await post(base, '/completion', { prompt: 'Once upon a time', n_predict: 24, seed: 7, ...body }));

const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'days'],
};

describe('llama.cpp sim: /completion sampling, stop and json_schema', () => {
  it('keys the stream on every sampling field the adapter sends', async () => {
    const base = await serve();
    const all = {
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      min_p: 0,
      repeat_penalty: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
    };
    const ref = (await completion(base, all))['content'];
    expect(typeof ref).toBe('string');
    expect((await completion(base, all))['content']).toBe(ref);
    const changed: Record<keyof typeof all, number> = {
      temperature: 0.2,
      top_k: 5,
      top_p: 0.5,
      min_p: 0.1,
      repeat_penalty: 1.3,
      presence_penalty: 0.7,
      frequency_penalty: -0.4,
    };
    for (const [k, v] of Object.entries(changed))
      expect((await completion(base, { ...all, [k]: v }))['content'], k).not.toBe(ref);
  });

  it('ends before a stop string as llama-server does: stop type word, the stopping word, the text before it', async () => {
    const base = await serve();
    const full = String((await completion(base, {}))['content']);
    const word = full.slice(8, 11);
    const at = full.indexOf(word);
    const r = await completion(base, { stop: [word] });
    expect(r).toMatchObject({
      stop: true,
      stop_type: 'word',
      stopping_word: word,
      content: full.slice(0, at),
    });
  });

  it('json_schema: the output is exactly the schema instance for the seed, streamed a character per token', async () => {
    const base = await serve();
    const want = outputForSchema(SCHEMA, 7);
    const r = await completion(base, { json_schema: SCHEMA, n_predict: 200, stop: ['"'] });
    expect(r['content']).toBe(want);
    expect(r).toMatchObject({ stop_type: 'eos', tokens_predicted: want.length });
    expect(JSON.parse(String(r['content']))).toHaveProperty('city');

    const text = await (
      await post(base, '/completion', {
        prompt: 'Once upon a time',
        n_predict: 200,
        seed: 7,
        stream: true,
        json_schema: SCHEMA,
      })
    ).text();
    const frames = sseData(text).map((d) => JSON.parse(d) as Json);
    expect(frames.map((f) => f['content']).join('')).toBe(want);
    expect(frames.at(-1)).toMatchObject({ stop: true, stop_type: 'eos' });

    // A different seed gives another instance; n_predict cuts it like any text.
    expect((await completion(base, { json_schema: SCHEMA, n_predict: 200, seed: 8 }))['content']).toBe(
      outputForSchema(SCHEMA, 8),
    );
    const cut = await completion(base, { json_schema: SCHEMA, n_predict: 5 });
    expect(cut).toMatchObject({ content: want.slice(0, 5), stop_type: 'limit' });
    // An empty schema is any JSON object.
    expect((await completion(base, { json_schema: {}, n_predict: 200 }))['content']).toBe(
      outputForSchema({ type: 'object' }, 7),
    );
  });
});

describe('llama.cpp sim: /apply-template', () => {
  const template = async (base: string, body: Json) => {
    const r = await post(base, '/apply-template', body);
    return { status: r.status, body: await json(r) };
  };

  it('renders ChatML with the generation prompt', async () => {
    const base = await serve();
    const r = await template(base, {
      messages: [
        { role: 'system', content: 'Be terse.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hello' },
            { type: 'text', text: 'there' },
          ],
        },
        { role: 'assistant', content: 'Hi.' },
        { role: 'user', content: 'Bye' },
      ],
    });
    expect(r).toEqual({
      status: 200,
      body: {
        prompt:
          '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHello\nthere<|im_end|>\n' +
          '<|im_start|>assistant\nHi.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
      },
    });
  });

  it('puts the tools into the system turn, so they count as prompt tokens', async () => {
    const base = await serve();
    const tool = { type: 'function', function: { name: 'get_weather', parameters: SCHEMA } };
    const plain = await template(base, { messages: [{ role: 'user', content: 'Weather?' }] });
    const withTools = await template(base, {
      messages: [{ role: 'user', content: 'Weather?' }],
      tools: [tool],
    });
    expect(withTools.body['prompt']).toBe(
      `<|im_start|>system\n# Tools\n<tools>\n${JSON.stringify(tool)}\n</tools><|im_end|>\n` +
        String(plain.body['prompt']),
    );
    const sys = await template(base, {
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U' },
      ],
      tools: [tool],
    });
    expect(String(sys.body['prompt'])).toMatch(/^<\|im_start\|>system\nS\n\n# Tools\n<tools>\n/);
  });

  it('continues a trailing assistant turn and honours add_generation_prompt: false', async () => {
    const base = await serve();
    const prefill = await template(base, {
      messages: [
        { role: 'user', content: 'Count' },
        { role: 'assistant', content: 'One, two' },
      ],
    });
    expect(prefill.body['prompt']).toBe('<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\nOne, two');
    const noGen = await template(base, {
      messages: [{ role: 'user', content: 'x' }],
      add_generation_prompt: false,
    });
    expect(noGen.body['prompt']).toBe('<|im_start|>user\nx<|im_end|>\n');
  });

  it("refuses what oaicompat_chat_params_parse refuses, with llama-server's messages", async () => {
    const base = await serve();
    const cases: [Json, number, string][] = [
      [{}, 400, "'messages' is required"],
      [{ messages: 'hi' }, 400, "Expected 'messages' to be an array"],
      [{ messages: [{ role: 'user' }] }, 400, "All non-assistant messages must contain 'content'"],
      [
        { messages: [{ role: 'assistant' }] },
        400,
        "Assistant message must contain either 'content' or 'tool_calls'!",
      ],
      [{ messages: [{ role: 'user', content: 3 }] }, 400, "Expected 'content' to be a string or an array"],
      [{ messages: [{ role: 'user', content: [{ type: 'file' }] }] }, 400, 'unsupported content[].type'],
      [
        { messages: [{ role: 'user', content: 'x' }], tool_choice: 'sometimes' },
        400,
        'Invalid tool_choice: sometimes',
      ],
      [
        { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:' } }] }] },
        500,
        'image input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
      ],
    ];
    for (const [body, status, message] of cases) {
      const r = await template(base, body);
      expect(r.status, message).toBe(status);
      expect(r.body['error'], message).toMatchObject({
        code: status,
        message,
        type: status === 400 ? 'invalid_request_error' : 'server_error',
      });
    }
  });
});

describe('llama.cpp sim: /v1/chat/completions', () => {
  const tools = [
    { type: 'function', function: { name: 'get_weather', parameters: SCHEMA } },
    { type: 'function', function: { name: 'other', parameters: { type: 'object' } } },
  ];
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];

  it('calls the first tool, streamed as llama-server frames tool-call chunks, ending with tool_calls', async () => {
    const base = await serve();
    const res = await post(base, '/v1/chat/completions', {
      messages,
      tools,
      seed: 3,
      max_tokens: 200,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Json);
    for (const c of chunks)
      expect(c).toMatchObject({ object: 'chat.completion.chunk', model: 'm', system_fingerprint: 'b1-sim' });
    expect(new Set(chunks.map((c) => c['id'])).size).toBe(1);
    const deltas = chunks.map((c) => (c['choices'] as Json[])[0]);
    expect(deltas[0]).toEqual({ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } });
    const calls = deltas.slice(1, -2).map((d) => ((d?.['delta'] as Json)['tool_calls'] as Json[])[0] as Json);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(String(calls[0]?.['id'])).toMatch(/^[0-9A-Za-z]{32}$/);
    for (const c of calls.slice(1)) expect(Object.keys(c).sort()).toEqual(['function', 'index']);
    const args = calls.map((c) => String((c['function'] as Json)['arguments'])).join('');
    expect(args).toBe(outputForSchema(SCHEMA, 3));
    expect(deltas.at(-2)).toEqual({ finish_reason: 'tool_calls', index: 0, delta: {} });
    const usageChunk = chunks.at(-1) ?? {};
    expect(usageChunk['choices']).toEqual([]);
    expect(usageChunk['usage']).toMatchObject({
      completion_tokens: args.length,
      total_tokens: expect.any(Number),
    });

    // The prompt is the template's, tools included: the usage counts its tokens.
    const tpl = await json(await post(base, '/apply-template', { messages, tools }));
    const tokens = await json(await post(base, '/tokenize', { content: tpl['prompt'], add_special: true }));
    expect((usageChunk['usage'] as Json)['prompt_tokens']).toBe((tokens['tokens'] as unknown[]).length);
  });

  it('refuses tools without --jinja, as llama-server does', async () => {
    const base = await serve({}, { jinja: false });
    for (const path of ['/v1/chat/completions', '/apply-template']) {
      const r = await post(base, path, { messages, tools });
      expect(r.status, path).toBe(500);
      expect((await json(r))['error'], path).toMatchObject({
        code: 500,
        message: 'tools param requires --jinja flag',
        type: 'server_error',
      });
      const choice = await post(base, path, { messages, tool_choice: 'none' });
      expect(((await json(choice))['error'] as Json)['message']).toBe(
        'tool_choice param requires --jinja flag',
      );
    }
    expect((await post(base, '/apply-template', { messages })).status).toBe(200);
  });

  it('answers a tool call without streaming, and cut short by max_tokens it is length', async () => {
    const base = await serve();
    const r = await json(
      await post(base, '/v1/chat/completions', { messages, tools, seed: 3, max_tokens: 200 }),
    );
    expect(r).toMatchObject({ object: 'chat.completion', model: 'm' });
    const choice = (r['choices'] as Json[])[0];
    expect(choice).toMatchObject({
      finish_reason: 'tool_calls',
      index: 0,
      message: {
        role: 'assistant',
        content: '',
        tool_calls: [
          { type: 'function', function: { name: 'get_weather', arguments: outputForSchema(SCHEMA, 3) } },
        ],
      },
    });
    const cut = await json(
      await post(base, '/v1/chat/completions', { messages, tools, seed: 3, max_tokens: 4 }),
    );
    expect((cut['choices'] as Json[])[0]).toMatchObject({ finish_reason: 'length' });
  });

  it('without tools (or with tool_choice none) streams sampled text that ends with stop', async () => {
    const base = await serve();
    for (const body of [{}, { tools, tool_choice: 'none' }]) {
      const data = sseData(
        await (
          await post(base, '/v1/chat/completions', {
            messages,
            seed: 3,
            max_tokens: 12,
            stream: true,
            ...body,
          })
        ).text(),
      );
      expect(data.at(-1)).toBe('[DONE]');
      const deltas = data.slice(0, -1).map((d) => ((JSON.parse(d) as Json)['choices'] as Json[])[0] as Json);
      const text = deltas
        .map((d) => {
          const c = (d['delta'] as Json)['content'];
          return typeof c === 'string' ? c : '';
        })
        .join('');
      expect(text.length).toBeGreaterThan(0);
      expect(deltas.some((d) => 'tool_calls' in (d['delta'] as Json))).toBe(false);
      expect(deltas.at(-1)).toMatchObject({ finish_reason: 'length', delta: {} });
    }
  });
});
