/**
 * Chat through the model's own template and the sampling, stop and guided-decoding fields, end
 * to end: the Triton adapter against the simulator's Triton dialect (real HTTP on real ports),
 * and the template rendering against a real model's `tokenizer_config.json`
 * (test/fixtures/triton/tokenizer/, README there).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { TritonAdapter } from '../../src/engines/triton/adapter.js';
import {
  parseTokenizerConfig,
  readChatTemplate,
  renderChat,
} from '../../src/engines/triton/chat-template.js';
import type { ModelConfig } from '../../src/engines/triton/wire-types.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { TRITON_SIM_DEFAULTS, type TritonSimOptions } from '../../src/sim/dialects/triton.js';
import { outputForSchema } from '../../src/sim/schema-output.js';
import { SIM_DEFAULTS, SimEngine } from '../../src/sim/sim-engine.js';
import { startSimServer, type RunningSim } from '../../src/sim/sim-server.js';

const TOKENIZER_DIR = fileURLToPath(new URL('../fixtures/triton/tokenizer', import.meta.url));
const TOKENIZER_CONFIG = readFileSync(`${TOKENIZER_DIR}/tokenizer_config.json`, 'utf8');
const MESSAGES = [
  { role: 'user', content: 'Hello, how are you?' },
  { role: 'assistant', content: "I'm doing great. How can I help you today?" },
  { role: 'user', content: "I'd like to show off how chat templating works!" },
] as const;
const RENDERED =
  '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n' +
  '<|im_start|>user\nHello, how are you?<|im_end|>\n' +
  "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n" +
  "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n" +
  '<|im_start|>assistant\n';

const preprocessing = (dir: string): ModelConfig => ({
  name: 'preprocessing',
  parameters: { tokenizer_dir: { string_value: dir } },
});

function failure(f: () => unknown): OrchError {
  try {
    f();
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe("the model's chat template", () => {
  it('renders ChatML as the model does (Qwen1.5-Chat), with the generation prompt', () => {
    const found = parseTokenizerConfig(TOKENIZER_CONFIG, 'tokenizer_config.json');
    if (!found.found) throw new Error(found.why);
    expect(found.chat.eosToken).toBe('<|im_end|>');
    expect(found.chat.bosToken).toBe('');
    expect(renderChat(found.chat, MESSAGES)).toBe(RENDERED);
  });

  it("is read from the preprocessing model's tokenizer_dir; an unfilled one means no template, and why", async () => {
    const read: string[] = [];
    const found = await readChatTemplate(preprocessing('/models/qwen'), async (p) => {
      read.push(p);
      return TOKENIZER_CONFIG;
    });
    expect(read).toEqual(['/models/qwen/tokenizer_config.json']);
    expect(found.found).toBe(true);
    const unfilled = await readChatTemplate(preprocessing('${tokenizer_dir}'));
    expect(unfilled).toEqual({ found: false, why: expect.stringContaining('names no tokenizer_dir') });
    const gone = await readChatTemplate(preprocessing('/nowhere'), () => Promise.reject(new Error('ENOENT')));
    expect(gone).toEqual({ found: false, why: expect.stringContaining('cannot be read') });
    const none = await readChatTemplate(preprocessing('/models/base'), async () => '{"eos_token":"</s>"}');
    expect(none).toEqual({ found: false, why: expect.stringContaining('has no chat_template') });
  });

  it('a named template list: the default one', () => {
    const t = JSON.stringify({
      chat_template: [{ name: 'default', template: '{{ messages[0].content }}!' }],
    });
    const found = parseTokenizerConfig(t, 'x');
    if (!found.found) throw new Error(found.why);
    expect(renderChat(found.chat, [{ role: 'user', content: 'hi' }])).toBe('hi!');
  });
});

const sims: RunningSim[] = [];
const adapters: TritonAdapter[] = [];

async function serve(o: Partial<TritonSimOptions>, read = true): Promise<TritonAdapter> {
  const engine = new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'trtllm-sim-7',
    ctx: 4096,
    tokensPerSecond: 20_000,
  });
  const sim = await startSimServer({
    dialect: 'triton',
    engine,
    host: '127.0.0.1',
    port: 0,
    triton: { ...TRITON_SIM_DEFAULTS, ...o },
  });
  sims.push(sim);
  const base = `http://127.0.0.1:${sim.port}`;
  const adapter = new TritonAdapter({ baseUrl: base, metricsUrl: base });
  adapters.push(adapter);
  if (read) await adapter.properties(AbortSignal.timeout(30_000));
  return adapter;
}

afterAll(async () => {
  await Promise.all(adapters.splice(0).map((a) => a.close()));
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

const base: GenerateRequest = {
  prompt: 'Tell me about the sea.',
  maxTokens: 24,
  seed: 7,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

async function run(a: TritonAdapter, r: GenerateRequest) {
  a.checkRequest(r);
  const evs: EngineEvent[] = [];
  for await (const ev of a.generate(r, AbortSignal.timeout(30_000))) evs.push(ev);
  const text = evs.map((e) => (e.kind === 'tokens' ? e.text : '')).join('');
  const done = evs.at(-1);
  if (done?.kind !== 'done') throw new Error('no done event');
  return { text, done };
}

describe('round trip against the simulated current repository', () => {
  let a: TritonAdapter;
  beforeAll(async () => {
    a = await serve({ ensemble: 'current', tokenizerDir: TOKENIZER_DIR });
  });

  it('messages: rendered by the template, generated from the rendered prompt, counted after templating', async () => {
    const chat: GenerateRequest = { ...base, prompt: '', messages: MESSAGES };
    const signal = AbortSignal.timeout(30_000);
    expect(await a.countChatTokens({ prompt: '', messages: MESSAGES }, signal)).toBe(
      await a.countTokens(RENDERED, signal),
    );
    const viaChat = await run(a, chat);
    const viaPrompt = await run(a, { ...base, prompt: RENDERED });
    expect(viaChat.text).toBe(viaPrompt.text);
    expect(viaChat.done.tokensIn).toBe(viaPrompt.done.tokensIn);
    expect(viaChat.text).not.toBe((await run(a, base)).text);
  });

  it('sampling: same fields and seed → same stream; another temperature or penalty → another stream', async () => {
    const warm = { ...base, sampling: { temperature: 0.3 } };
    const one = await run(a, warm);
    expect((await run(a, warm)).text).toBe(one.text);
    expect((await run(a, { ...base, sampling: { temperature: 1.3 } })).text).not.toBe(one.text);
    expect((await run(a, { ...warm, sampling: { temperature: 0.3, presencePenalty: 0.5 } })).text).not.toBe(
      one.text,
    );
    // Setting a field to the profile's own value is the profile's stream.
    expect((await run(a, { ...base, sampling: { temperature: 0.8 } })).text).toBe((await run(a, base)).text);
  });

  it('stop: the text ends before the stop word, and the stop reason says so', async () => {
    const free = await run(a, { ...base, maxTokens: 40, ignoreEos: true });
    const words = free.text.split(' ').filter((w) => w.length > 2);
    const stopWord = words[Math.floor(words.length / 2)];
    if (stopWord === undefined) throw new Error(`no word to stop on in '${free.text}'`);
    const at = free.text.indexOf(stopWord);
    const stopped = await run(a, { ...base, maxTokens: 40, ignoreEos: true, stop: [stopWord] });
    expect(stopped.text).toBe(free.text.slice(0, at));
    expect(stopped.done.stopReason).toBe('stop');
    expect(free.done.stopReason).toBe('length');
  });

  it('response_format json_schema: exactly the guided output, valid for the schema', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0, maximum: 120 } },
      required: ['name', 'age'],
      additionalProperties: false,
    };
    const r = await run(a, {
      ...base,
      maxTokens: 200,
      responseFormat: { type: 'json_schema', json_schema: { name: 'person', schema } },
    });
    expect(r.text).toBe(outputForSchema(schema, base.seed));
    expect(new Ajv().validate(schema, JSON.parse(r.text))).toBe(true);
    expect(r.done.stopReason).toBe('eos');
    const obj = await run(a, { ...base, maxTokens: 200, responseFormat: { type: 'json_object' } });
    expect(obj.text).toBe(outputForSchema(undefined, base.seed));
  });

  it('tools and min_p are refused, naming the field and triton', () => {
    const tool = { type: 'function' as const, function: { name: 'get_weather' } };
    expect(failure(() => a.checkRequest({ ...base, tools: [tool] })).message).toMatch(/^tools: .*'triton'/);
    expect(failure(() => a.checkRequest({ ...base, sampling: { minP: 0.05 } })).message).toMatch(
      /^min_p: .*'triton'/,
    );
  });
});

describe('refusals from what the legacy repository (and a pool without a template) declares', () => {
  let a: TritonAdapter;
  beforeAll(async () => {
    a = await serve({ ensemble: 'legacy' });
  });

  it('response_format: the legacy ensemble declares no guided decoding inputs', () => {
    const err = failure(() => a.checkRequest({ ...base, responseFormat: { type: 'json_object' } }));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(err.message).toMatch(/^response_format: engine 'triton'.*guided_decoding_guide_type/);
  });

  it('messages without a chat template: refused, saying what is missing', () => {
    const err = failure(() => a.checkRequest({ ...base, prompt: '', messages: MESSAGES }));
    expect(err.message).toMatch(
      /^messages: engine 'triton' cannot honour it \(no chat template: .*tokenizer_dir/,
    );
  });

  it('what legacy declares passes: stop words and the penalties', async () => {
    const r = await run(a, { ...base, stop: ['zzz'], sampling: { frequencyPenalty: 0.2, topK: 10 } });
    expect(r.done.kind).toBe('done');
  });
});

describe('before the instance was read', () => {
  it('checkRequest refuses only tools; generate refuses an undeclared input from the ensemble it reads', async () => {
    const a = await serve({ ensemble: 'legacy' }, false);
    const tool = { type: 'function' as const, function: { name: 'f' } };
    expect(failure(() => a.checkRequest({ ...base, tools: [tool] })).message).toMatch(/^tools: /);
    const guided: GenerateRequest = { ...base, responseFormat: { type: 'json_object' } };
    expect(() => a.checkRequest(guided)).not.toThrow();
    await expect(run(a, guided)).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringMatching(
        /^response_format: ensemble 'ensemble' declares no input 'guided_decoding_guide_type'/,
      ),
    });
    // From then on the ensemble is known and admission refuses it itself.
    expect(failure(() => a.checkRequest(guided)).message).toMatch(/^response_format: engine 'triton'/);
    await expect(
      a.countChatTokens({ prompt: '', messages: MESSAGES }, AbortSignal.timeout(30_000)),
    ).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringMatching(/^messages: .*tokenizer_dir/),
    });
  });
});
