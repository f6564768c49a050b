/**
 * The OpenAI-compatible surface (SPEC §17 §2.7) with the clients people use, against `llorch dev`
 * as a user runs it (a real process, the generated model on a real llama-server): the official
 * `openai` client, LangChain's `ChatOpenAI` and the Vercel AI SDK's OpenAI-compatible provider.
 * Each shows chat, a stop sequence, a seed giving the same text twice, and a JSON-schema
 * response that parses. Responses and chunks are checked against contracts/openapi/openai.yaml.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, Output, streamText } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { requireLlamaServer, until } from '../support/harness.js';
import { startLlorchDev, type LlorchDev } from '../support/llorch-dev.js';
import { MESSAGES, SCHEMA, stopFrom, validSchema } from './client-fixtures.js';
import { openAiSseChunks, validateOpenAi } from '../support/openai-schema.js';

const KEY = 'dev-openai-key';
let dev: LlorchDev;
let url = '';

beforeAll(async () => {
  await requireLlamaServer();
  // A context of 2048 leaves room for long answers (the abort test stops one mid-way).
  dev = await startLlorchDev(['--replicas', '1', '--api-key', KEY, '--ctx', '2048']);
  url = dev.url;
}, 120_000);

afterAll(async () => {
  await dev?.stop();
});

const openai = () => new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });

/** The llama-server processes serving a dev instance's model, with their ports. */
function llamaServers(dataDir: string): { pid: number; port: number }[] {
  const out: { pid: number; port: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const exe = argv[0] ?? '';
    if (!exe.endsWith('llama-server') || !argv.some((a) => a.startsWith(dataDir))) continue;
    out.push({ pid: Number(entry), port: Number(argv[argv.indexOf('--port') + 1]) });
  }
  return out;
}

async function task(id: string): Promise<Record<string, unknown>[]> {
  const r = await fetch(`${url}/v1/tasks/${id}/stream`, { headers: { authorization: `Bearer ${KEY}` } });
  const text = await r.text();
  return [...text.matchAll(/^event: (\w+)\nid: \d+\ndata: (.+)$/gm)].map((m) => ({
    event: m[1],
    ...(JSON.parse(m[2] ?? '{}') as Record<string, unknown>),
  }));
}

describe('openai (official client) ↔ llorch dev', () => {
  it('chat: a completion with usage, finish_reason and a fingerprint from engine version and digest', async () => {
    const raw = await openai()
      .chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 12, seed: 1 })
      .withResponse();
    const c = raw.data;
    validateOpenAi('ChatCompletion', c);
    expect(c.object).toBe('chat.completion');
    expect(c.model).toBe('tiny');
    expect(c.choices[0]?.message.role).toBe('assistant');
    expect(c.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
    expect(c.usage?.completion_tokens).toBeGreaterThan(0);
    // Prompt tokens are counted after the model's chat template: more than the words alone.
    expect(c.usage?.prompt_tokens).toBeGreaterThan('You are terse.Say hello.'.length);
    expect(c.system_fingerprint).toMatch(/^fp_[0-9a-f]{12}$/);
    // The request was an OrchQueue task: its stream says so, ended once with finish_reason.
    const id = raw.response.headers.get('x-llorch-task-id') ?? '';
    const events = await task(id);
    expect(events.at(-1)).toMatchObject({ event: 'end', finish_reason: c.choices[0]?.finish_reason });
  });

  it('a seed gives the same text twice, streamed or not; another seed another text', async () => {
    const ask = (seed: number) =>
      openai().chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 16, seed });
    const [a, b, other] = [await ask(42), await ask(42), await ask(43)];
    expect(a.choices[0]?.message.content).toBe(b.choices[0]?.message.content);
    expect(other.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
    expect(a.system_fingerprint).toBe(b.system_fingerprint);
    const stream = await openai().chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      max_tokens: 16,
      seed: 42,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      validateOpenAi('ChatCompletionChunk', chunk);
      text += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(a.choices[0]?.message.content);
    expect(finish).toBe(a.choices[0]?.finish_reason);
    expect(usage).toEqual(a.usage);
  });

  it('the raw stream is OpenAI framing: data chunks, a usage chunk, then [DONE]', async () => {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        messages: MESSAGES,
        max_tokens: 4,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const chunks = openAiSseChunks(await r.text()) as { choices: unknown[]; usage?: unknown }[];
    for (const c of chunks) validateOpenAi('ChatCompletionChunk', c);
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage).toMatchObject({ completion_tokens: 4 });
  });

  it('a stop sequence ends the text before it, with finish_reason stop', async () => {
    const full = await openai().chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      max_tokens: 24,
      seed: 5,
    });
    const text = full.choices[0]?.message.content ?? '';
    const stop = stopFrom(text);
    const stopped = await openai().chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      max_tokens: 24,
      seed: 5,
      stop: [stop],
    });
    expect(stopped.choices[0]?.message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
  });

  it('a JSON-schema response parses and matches the schema', async () => {
    const c = await openai().chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Give n and ok as JSON.' }],
      max_tokens: 96,
      seed: 3,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: SCHEMA, strict: true } },
    });
    const parsed: unknown = JSON.parse(c.choices[0]?.message.content ?? '');
    expect(validSchema(parsed)).toBe(true);
  });

  it('legacy completions: a prompt, 16 tokens by default, as OpenAI does', async () => {
    const c = await openai().completions.create({ model: 'tiny', prompt: 'Once upon a time', seed: 9 });
    validateOpenAi('Completion', c);
    expect(c.object).toBe('text_completion');
    expect(c.usage?.completion_tokens).toBeLessThanOrEqual(16);
    expect(c.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
  });

  it('models: the served model, and one by id; an unknown id is 404 in OpenAI shape', async () => {
    const list = await openai().models.list();
    expect(list.data.map((m) => m.id)).toContain('tiny');
    validateOpenAi('ModelList', { object: 'list', data: list.data });
    const m = await openai().models.retrieve('tiny');
    expect(m).toMatchObject({ id: 'tiny', object: 'model', owned_by: 'llama-orch' });
    const err = await openai()
      .models.retrieve('no-such-model')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('NOT_FOUND');
  });

  it('model may name a catalog tag: an entry of the served file carrying it resolves to its pool', async () => {
    // A second catalog entry for the generated file (its signature sidecar verifies it), tagged.
    const added = await fetch(`${url}/v1/catalog/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'tiny-chat',
        source: join(dev.dataDir, 'models', 'tiny.gguf'),
        tags: ['chat'],
      }),
    });
    expect(added.status, await added.clone().text()).toBe(201);
    const c = await openai().chat.completions.create({
      model: 'chat',
      messages: MESSAGES,
      max_tokens: 4,
      seed: 1,
    });
    // Answered by the pool serving those bytes, under the name the client used.
    expect(c.model).toBe('chat');
    expect(c.usage?.completion_tokens).toBeGreaterThan(0);
    const unknown = await openai()
      .chat.completions.create({ model: 'no-such-tag', messages: MESSAGES, max_tokens: 4 })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unknown as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('model');
  });

  it("tools reach llama-server's chat route: its template renders them into the prompt", async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ];
    const plain = await openai().chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      max_tokens: 2,
      seed: 1,
    });
    const withTools = await openai().chat.completions.create({
      model: 'tiny',
      messages: MESSAGES,
      max_tokens: 2,
      seed: 1,
      tools,
    });
    // The byte-level tiny model: the tool's JSON alone is more tokens than this.
    expect(withTools.usage?.prompt_tokens ?? 0).toBeGreaterThan((plain.usage?.prompt_tokens ?? 0) + 60);
  });

  it('aborting a stream cancels the task and frees the engine slot', async () => {
    const ctl = new AbortController();
    const { data: stream, response } = await openai()
      .chat.completions.create(
        { model: 'tiny', messages: MESSAGES, max_tokens: 1800, stream: true },
        { signal: ctl.signal },
      )
      .withResponse();
    // Hold the engine still so the task cannot end on its own, however fast or loaded the
    // machine: only the client's disconnect can end it now.
    const engines = llamaServers(dev.dataDir);
    expect(engines.length).toBe(1);
    for (const e of engines) process.kill(e.pid, 'SIGSTOP');
    try {
      ctl.abort();
      // The client ends its iteration quietly on abort; the server sees the connection close.
      for await (const _ of stream) void _;
      const events = await task(response.headers.get('x-llorch-task-id') ?? '');
      expect(events.at(-1)).toMatchObject({ event: 'end', canceled: true, finish_reason: 'canceled' });
    } finally {
      for (const e of engines) process.kill(e.pid, 'SIGCONT');
    }
    // The engine request was aborted with the task: llama-server's slot goes idle.
    const port = engines[0]?.port ?? 0;
    await until(async () => {
      const slots = (await (await fetch(`http://127.0.0.1:${port}/slots`)).json()) as {
        is_processing: boolean;
      }[];
      return slots.every((sl) => !sl.is_processing);
    }, 30_000);
  });

  it('refuses what it cannot do, naming the parameter, in OpenAI error shape', async () => {
    for (const [extra, param] of [
      [{ n: 2 }, 'n'],
      [{ logprobs: true }, 'logprobs'],
      [{ audio: { voice: 'x' } }, 'audio'],
      [{ temperature: 7 }, 'temperature'],
    ] as const) {
      const err = await openai()
        .chat.completions.create({ model: 'tiny', messages: MESSAGES, max_tokens: 4, ...extra } as never)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      const e = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect(e.code).toBe('INVALID_PARAMS');
      expect(e.param).toBe(param);
      validateOpenAi('ErrorResponse', { error: e.error });
    }
    const bad = await new OpenAI({ apiKey: 'wrong', baseURL: `${url}/v1`, maxRetries: 0 }).models
      .list()
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

/** The parts of LangChain's `AIMessageChunk` read here. */
interface Reply {
  readonly content: unknown;
  readonly usage_metadata?: { readonly output_tokens: number };
}
/** LangChain's call options carry the seed (`ChatOpenAICallOptions.seed`). */
type CallOptions = NonNullable<Parameters<ChatOpenAI['invoke']>[1]>;
const SEED_11 = { seed: 11 } as CallOptions;
const SEED_3 = { seed: 3 } as CallOptions;

describe('LangChain ChatOpenAI ↔ llorch dev', () => {
  const chat = (opts: { maxTokens?: number; stop?: string[] } = {}) =>
    new ChatOpenAI({
      model: 'tiny',
      apiKey: KEY,
      configuration: { baseURL: `${url}/v1` },
      maxRetries: 0,
      maxTokens: opts.maxTokens ?? 16,
      ...(opts.stop ? { stop: opts.stop } : {}),
    });

  it('chat, the same seed twice, and a stop sequence', async () => {
    const msgs: [string, string][] = [
      ['system', 'You are terse.'],
      ['human', 'Say hello.'],
    ];
    const a = (await chat({ maxTokens: 24 }).invoke(msgs, SEED_11)) as unknown as Reply;
    const b = await chat({ maxTokens: 24 }).invoke(msgs, SEED_11);
    expect(typeof a.content).toBe('string');
    expect(a.content).toBe(b.content);
    expect(a.usage_metadata?.output_tokens).toBeGreaterThan(0);
    const text = String(a.content);
    const stop = stopFrom(text);
    const s = await chat({ maxTokens: 24, stop: [stop] }).invoke(msgs, SEED_11);
    expect(s.content).toBe(text.slice(0, text.indexOf(stop)));
    // Streaming gives the same text.
    let streamed = '';
    for await (const part of await chat({ maxTokens: 24 }).stream(msgs, SEED_11))
      streamed += typeof part.content === 'string' ? part.content : '';
    expect(streamed).toBe(text);
  });

  it('structured output through a JSON schema parses', async () => {
    const structured = chat({ maxTokens: 96 }).withStructuredOutput(
      z.object({ n: z.number().int(), ok: z.boolean() }),
      { method: 'jsonSchema', name: 'answer' },
    );
    const r = await structured.invoke([['human', 'Give n and ok.']], SEED_3);
    expect(validSchema(r)).toBe(true);
  });
});

describe('Vercel AI SDK (openai-compatible provider) ↔ llorch dev', () => {
  const provider = () =>
    createOpenAICompatible({
      name: 'llorch',
      baseURL: `${url}/v1`,
      apiKey: KEY,
      includeUsage: true,
      supportsStructuredOutputs: true,
    });

  it('generateText and streamText: chat, same seed twice, a stop sequence', async () => {
    const args = {
      model: provider()('tiny'),
      system: 'You are terse.',
      prompt: 'Say hello.',
      maxOutputTokens: 24,
      seed: 21,
      maxRetries: 0,
    };
    const a = await generateText(args);
    const b = await generateText(args);
    expect(a.text).toBe(b.text);
    expect(a.usage.outputTokens).toBeGreaterThan(0);
    const stop = stopFrom(a.text);
    const s = await generateText({ ...args, stopSequences: [stop] });
    expect(s.text).toBe(a.text.slice(0, a.text.indexOf(stop)));
    expect(s.finishReason).toBe('stop');
    const streamed = streamText(args);
    let text = '';
    for await (const delta of streamed.textStream) text += delta;
    expect(text).toBe(a.text);
    expect((await streamed.usage).outputTokens).toBe(a.usage.outputTokens);
  });

  it('a JSON-schema object output parses', async () => {
    const r = await generateText({
      model: provider()('tiny'),
      prompt: 'Give n and ok.',
      maxOutputTokens: 96,
      seed: 3,
      maxRetries: 0,
      output: Output.object({ schema: z.object({ n: z.number().int(), ok: z.boolean() }) }),
    });
    expect(validSchema(r.output)).toBe(true);
  });
});
