/**
 * The OpenAI-compatible surface (SPEC §17 §2.7) with the clients people use, against `llorch dev`
 * as a user runs it (a real process, the generated model on a real llama-server): the official
 * `openai` client, LangChain's `ChatOpenAI` and the Vercel AI SDK's OpenAI-compatible provider.
 * Each shows chat, a stop sequence, a seed giving the same text twice, and a JSON-schema
 * response that parses. Responses and chunks are checked against contracts/openapi/openai.yaml.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, Output, streamText } from 'ai';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { requireLlamaServer } from '../support/harness.js';
import { openAiSseChunks, validateOpenAi } from '../support/openai-schema.js';

const CLI = 'dist/src/cli/llorch.js';
const KEY = 'dev-openai-key';
let dev: ChildProcess;
let url = '';
let output = '';
let dataDir = '';

beforeAll(async () => {
  await requireLlamaServer();
  dataDir = await mkdtemp(join(tmpdir(), 'llorch-dev-openai-'));
  dev = spawn(
    process.execPath,
    [CLI, 'dev', '--port', '0', '--replicas', '1', '--api-key', KEY, '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`llorch dev did not become ready:\n${output}`)), 90_000);
    const onData = (b: Buffer) => {
      output += b.toString('utf8');
      url ||= /listening on (http:\/\/[\d.:]+)/.exec(output)?.[1] ?? '';
      if (url && output.includes('"event":"pools.started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    dev.stdout?.on('data', onData);
    dev.stderr?.on('data', onData);
    dev.on('exit', (code) => reject(new Error(`llorch dev exited with ${code}:\n${output}`)));
  });
}, 120_000);

afterAll(async () => {
  if (dev.exitCode !== null) return;
  const exited = new Promise((r) => dev.once('exit', r));
  dev.kill('SIGTERM');
  await exited;
});

const openai = () => new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hello.' },
];
/** The JSON schema every client asks for; the engine's grammar makes the tiny model follow it. */
const SCHEMA = {
  type: 'object',
  properties: { n: { type: 'integer' }, ok: { type: 'boolean' } },
  required: ['n', 'ok'],
  additionalProperties: false,
} as const;
const validSchema = new Ajv().compile(SCHEMA);

/** A stop string from `text`: its first ASCII letter or digit after the start. */
function stopFrom(text: string): string {
  const i = text.slice(1).search(/[A-Za-z0-9]/);
  if (i < 0) throw new Error(`no ASCII character to stop at in ${JSON.stringify(text)}`);
  return text.charAt(i + 1);
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
      body: JSON.stringify({ id: 'tiny-chat', source: join(dataDir, 'models', 'tiny.gguf'), tags: ['chat'] }),
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

  it('aborting a stream cancels the task: its stream ends canceled, before max_tokens', async () => {
    const ctl = new AbortController();
    // The response head arrives once the task is admitted; aborting then leaves the engine
    // hundreds of tokens short, however fast it is.
    const { data: stream, response } = await openai()
      .chat.completions.create(
        { model: 'tiny', messages: MESSAGES, max_tokens: 400, stream: true },
        { signal: ctl.signal },
      )
      .withResponse();
    ctl.abort();
    const id = response.headers.get('x-llorch-task-id') ?? '';
    // The client ends its iteration quietly on abort; the server sees the connection close.
    for await (const _ of stream) void _;
    const events = await task(id);
    const end = events.at(-1);
    expect(end).toMatchObject({ event: 'end', canceled: true, finish_reason: 'canceled' });
    expect(Number(end?.['tokens_out'])).toBeLessThan(400);
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
