/**
 * The OpenAI-compatible surface in front of simulated vLLM and TGI pools (their wire formats,
 * chat templates, structured outputs and tool parsers): the same clients as against llama.cpp —
 * `openai`, LangChain's `ChatOpenAI`, the Vercel AI SDK — plus tools and embeddings.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, Output } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KEYS, TEST_KEYS, simPool, startHarness, type Harness } from '../support/harness.js';
import { MESSAGES, SCHEMA, stopFrom, validSchema } from './client-fixtures.js';
import { validateOpenAi } from '../support/openai-schema.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      simPool('chat-vllm', 'vllm', {
        launch: {
          worker: 'sim',
          parallel: 2,
          extra_args: ['--enable-auto-tool-choice', '--tool-call-parser', 'hermes'],
        },
      }),
      simPool('chat-tgi', 'tgi'),
      simPool('embed-vllm', 'vllm', {
        launch: { worker: 'sim', parallel: 2, extra_args: ['--task', 'embed'] },
      }),
    ],
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

const openai = () => new OpenAI({ apiKey: KEYS.alice, baseURL: `${h.url}/v1`, maxRetries: 0 });
const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe.each(['chat-vllm', 'chat-tgi'])('openai client ↔ %s', (model) => {
  it('chat, the same seed twice, another seed another text, usage after templating', async () => {
    const ask = (seed: number) =>
      openai().chat.completions.create({ model, messages: MESSAGES, max_tokens: 16, seed });
    const [a, b, c] = [await ask(1), await ask(1), await ask(2)];
    validateOpenAi('ChatCompletion', a);
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    expect(c.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
    expect(a.usage?.prompt_tokens).toBeGreaterThan(0);
    let streamed = '';
    for await (const chunk of await openai().chat.completions.create({
      model,
      messages: MESSAGES,
      max_tokens: 16,
      seed: 1,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      validateOpenAi('ChatCompletionChunk', chunk);
      streamed += chunk.choices[0]?.delta.content ?? '';
    }
    expect(streamed).toBe(a.choices[0]?.message.content);
  });

  it('temperature is part of the determinism key', async () => {
    const ask = (temperature: number) =>
      openai().chat.completions.create({ model, messages: MESSAGES, max_tokens: 16, seed: 4, temperature });
    expect((await ask(0.5)).choices[0]?.message.content).not.toBe(
      (await ask(0.9)).choices[0]?.message.content,
    );
  });

  it('a stop sequence ends the text before it', async () => {
    const full = await openai().chat.completions.create({
      model,
      messages: MESSAGES,
      max_tokens: 24,
      seed: 5,
    });
    const text = full.choices[0]?.message.content ?? '';
    const stop = stopFrom(text);
    const s = await openai().chat.completions.create({
      model,
      messages: MESSAGES,
      max_tokens: 24,
      seed: 5,
      stop,
    });
    expect(s.choices[0]?.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(s.choices[0]?.finish_reason).toBe('stop');
  });

  it('a JSON-schema response parses and matches', async () => {
    const c = await openai().chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'n and ok' }],
      max_tokens: 200,
      seed: 3,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: SCHEMA } },
    });
    expect(validSchema(JSON.parse(c.choices[0]?.message.content ?? ''))).toBe(true);
  });

  it('tools: a required call comes back as tool_calls, streamed and not', async () => {
    const c = await openai().chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      max_tokens: 200,
      seed: 3,
      tools: [WEATHER],
      tool_choice: 'required',
    });
    validateOpenAi('ChatCompletion', c);
    expect(c.choices[0]?.finish_reason).toBe('tool_calls');
    const call = c.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe('function');
    const fn = call?.type === 'function' ? call.function : undefined;
    expect(fn?.name).toBe('get_weather');
    expect(typeof (JSON.parse(fn?.arguments ?? '') as { city: unknown }).city).toBe('string');
    // The streaming helper of the client assembles the same call.
    const final = await openai()
      .chat.completions.stream({
        model,
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        max_tokens: 200,
        seed: 3,
        tools: [WEATHER],
        tool_choice: 'required',
      })
      .finalChatCompletion();
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      function: { name: 'get_weather', arguments: fn?.arguments },
    });
  });
});

describe('other clients ↔ simulated vLLM', () => {
  it('LangChain ChatOpenAI: chat with a seed twice, and tools bound to the model', async () => {
    const chat = new ChatOpenAI({
      model: 'chat-vllm',
      apiKey: KEYS.alice,
      configuration: { baseURL: `${h.url}/v1` },
      maxRetries: 0,
      maxTokens: 16,
    });
    const seeded = { seed: 8 } as NonNullable<Parameters<ChatOpenAI['invoke']>[1]>;
    const a = await chat.invoke([['human', 'Say hello.']], seeded);
    const b = await chat.invoke([['human', 'Say hello.']], seeded);
    expect(a.text).toBe(b.text);
    // Room for the whole call: a call cut at max_tokens is no call.
    const withTools = new ChatOpenAI({
      model: 'chat-vllm',
      apiKey: KEYS.alice,
      configuration: { baseURL: `${h.url}/v1` },
      maxRetries: 0,
      maxTokens: 200,
    }).bindTools([WEATHER], { tool_choice: 'required' });
    const r = await withTools.invoke([['human', 'Weather in Paris?']], seeded);
    expect(r.tool_calls?.[0]?.name).toBe('get_weather');
  });

  it('AI SDK: generateText with a stop sequence and a JSON object output', async () => {
    const provider = createOpenAICompatible({
      name: 'llorch',
      baseURL: `${h.url}/v1`,
      apiKey: KEYS.alice,
      supportsStructuredOutputs: true,
    });
    const args = {
      model: provider('chat-vllm'),
      prompt: 'Say hello.',
      maxOutputTokens: 24,
      seed: 6,
      maxRetries: 0,
    };
    const a = await generateText(args);
    const stop = stopFrom(a.text);
    expect((await generateText({ ...args, stopSequences: [stop] })).text).toBe(
      a.text.slice(0, a.text.indexOf(stop)),
    );
    const o = await generateText({
      ...args,
      maxOutputTokens: 200,
      output: Output.object({ schema: z.object({ n: z.number().int(), ok: z.boolean() }) }),
    });
    expect(validSchema(o.output)).toBe(true);
  });
});

describe('embeddings ↔ simulated vLLM pooling model', () => {
  it('openai.embeddings: base64 (the client default, decoded by it) and float give the same vectors', async () => {
    const viaBase64 = await openai().embeddings.create({ model: 'embed-vllm', input: ['hello', 'world'] });
    const viaFloat = await openai().embeddings.create({
      model: 'embed-vllm',
      input: ['hello', 'world'],
      encoding_format: 'float',
    });
    validateOpenAi('CreateEmbeddingResponse', viaFloat);
    expect(viaFloat.data).toHaveLength(2);
    expect(viaFloat.data.map((d) => d.index)).toEqual([0, 1]);
    const v0 = viaFloat.data[0]?.embedding ?? [];
    expect(v0.length).toBeGreaterThan(0);
    // base64 carries float32: equal to the float answer at float32 precision.
    (viaBase64.data[0]?.embedding ?? []).forEach((x, i) => expect(x).toBeCloseTo(v0[i] ?? NaN, 5));
    expect(viaFloat.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('a chat request to the embedding model is refused by name', async () => {
    const err = await openai()
      .chat.completions.create({ model: 'embed-vllm', messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('INVALID_PARAMS');
  });
});
