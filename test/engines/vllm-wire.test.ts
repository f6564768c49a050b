/**
 * The vLLM adapter's pure parts against transcripts derived from vLLM's source, both release
 * lines (before and since v0.10.1's error-body change; test/fixtures/vllm/README.md).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { VllmAdapter } from '../../src/engines/vllm/adapter.js';
import { vllmPoolingByArgs, vllmToolCalling } from '../../src/engines/vllm/launch-args.js';
import { mapVllmError } from '../../src/engines/vllm/map-error.js';
import { VllmStreamParser } from '../../src/engines/vllm/parse-stream.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/vllm/${name}`, import.meta.url), 'utf8');

function parse(name: string): EngineEvent[] {
  const p = new VllmStreamParser();
  return parseSse(fixture(name)).flatMap((r) => p.push(r.data));
}

function thrown(name: string): OrchError {
  try {
    parse(name);
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error(`${name}: no error`);
}

describe('vLLM stream errors, both release lines', () => {
  it('current (≥ 0.10.1): the ErrorResponse itself; a dead engine core → WORKER_RESET', () => {
    const err = thrown('error-stream.sse');
    expect(err).toMatchObject({ code: 'WORKER_RESET', engine: 'vllm' });
    expect(err.message).toMatch(/engine core died/);
  });

  it('current: out of memory → WORKER_RESET', () => {
    expect(thrown('error-stream-oom.sse')).toMatchObject({ code: 'WORKER_RESET' });
  });

  it('0.7 to 0.10: a dead engine core typed 400 BadRequestError is still WORKER_RESET, not INVALID_PARAMS', () => {
    expect(thrown('error-stream-0.9.sse')).toMatchObject({ code: 'WORKER_RESET' });
  });

  it('before 0.10.1: {"error": {"object": "error", …, "code": 400}} → INVALID_PARAMS with its message', () => {
    const err = thrown('error-stream-legacy.sse');
    expect(err).toMatchObject({ code: 'INVALID_PARAMS', engine: 'vllm' });
    expect(err.message).toContain('Prompt cannot be empty');
  });
});

describe('vLLM HTTP errors', () => {
  it('both body shapes of a ctx overflow → INVALID_PARAMS with the message', () => {
    const current = mapVllmError(400, fixture('error-400.json'));
    expect(current.code).toBe('INVALID_PARAMS');
    expect(current.message).toContain("'max_tokens' or 'max_completion_tokens' is too large");
    const legacy = mapVllmError(400, fixture('error-400-legacy.json'));
    expect(legacy.message).toContain('maximum context length is 4096');
  });

  it("the scaling middleware's 503 (a bare string error) → REPLICA_EXHAUSTED with its message", () => {
    const err = mapVllmError(503, fixture('error-503-scaling.json'));
    expect(err.code).toBe('REPLICA_EXHAUSTED');
    expect(err.message).toContain('currently scaling');
  });

  it('a 500 from a dead engine core → WORKER_RESET', () => {
    expect(
      mapVllmError(
        500,
        '{"error":{"message":"EngineCore encountered an issue. See stack trace (above) for the root cause.","type":"InternalServerError","param":null,"code":500}}',
      ).code,
    ).toBe('WORKER_RESET');
  });
});

describe('vLLM stop reasons', () => {
  it('a stop string (stop_reason set) is "stop"; held-back text still counts its token', () => {
    const evs = parse('completion-stream-stop.sse');
    const tokens = evs.filter((e) => e.kind === 'tokens');
    expect(tokens.map((t) => t.count)).toEqual([1, 1, 1]);
    expect(evs.at(-1)).toEqual({ kind: 'done', tokensIn: 7, tokensOut: 3, stopReason: 'stop' });
  });

  it('"stop" with no stop_reason is end-of-sequence', () => {
    expect(parse('completion-stream-no-usage.sse').at(-1)).toMatchObject({ stopReason: 'eos' });
  });
});

/** A stand-in vLLM that records each request's path and raw body and answers a transcript. */
describe('vLLM request bodies on the wire', () => {
  const seen: { url: string; body: string }[] = [];
  let server: Server;
  let adapter: VllmAdapter;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
        if (req.url === '/tokenize') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ count: 42, max_model_len: 4096, tokens: [] }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(fixture(req.url === '/v1/chat/completions' ? 'chat-stream.sse' : 'completion-stream.sse'));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    adapter = new VllmAdapter({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      model: 'm',
      slots: 1,
    });
  });
  afterAll(async () => {
    await adapter.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const base: GenerateRequest = {
    prompt: 'p',
    maxTokens: 16,
    seed: 1,
    determinism: 'strict',
    samplerProfileVersion: 'v1',
    cachePrompt: false,
  };
  async function sent(req: Partial<GenerateRequest>): Promise<{ url: string; body: string }> {
    const events: EngineEvent[] = [];
    for await (const ev of adapter.generate({ ...base, ...req }, AbortSignal.timeout(10_000)))
      events.push(ev);
    expect(events.at(-1)?.kind).toBe('done');
    const last = seen.at(-1);
    if (last === undefined) throw new Error('no request');
    return last;
  }
  const json = (s: string) => JSON.parse(s) as Record<string, unknown>;

  it('without task fields: byte-identical to sampler profile v1 as always sent', async () => {
    const r = await sent({});
    expect(r.url).toBe('/v1/completions');
    expect(r.body).toBe(
      '{"model":"m","prompt":"p","max_tokens":16,"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true},"seed":1,"temperature":0.8,"top_p":0.95,"top_k":40,"min_p":0,"repetition_penalty":1,"presence_penalty":0,"frequency_penalty":0,"ignore_eos":false}',
    );
  });

  it('each sampling field set by the task reaches its vLLM parameter; the others keep profile v1', async () => {
    const r = json(
      (
        await sent({
          sampling: {
            temperature: 0.2,
            topP: 0.5,
            topK: 7,
            minP: 0.05,
            repeatPenalty: 1.1,
            presencePenalty: 0.3,
            frequencyPenalty: -0.4,
          },
        })
      ).body,
    );
    expect(r).toMatchObject({
      temperature: 0.2,
      top_p: 0.5,
      top_k: 7,
      min_p: 0.05,
      repetition_penalty: 1.1,
      presence_penalty: 0.3,
      frequency_penalty: -0.4,
    });
    expect(json((await sent({ sampling: { topK: 3 } })).body)).toMatchObject({
      top_k: 3,
      temperature: 0.8,
      top_p: 0.95,
    });
  });

  it('stop and response_format (json_schema gets the name vLLM requires)', async () => {
    const r = json((await sent({ stop: ['\n\n', 'END'], responseFormat: { type: 'json_object' } })).body);
    expect(r['stop']).toEqual(['\n\n', 'END']);
    expect(r['response_format']).toEqual({ type: 'json_object' });
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    const s = json((await sent({ responseFormat: { type: 'json_schema', json_schema: { schema } } })).body);
    expect(s['response_format']).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema } });
    expect(json((await sent({ stop: [] })).body)).not.toHaveProperty('stop');
  });

  it('messages go to /v1/chat/completions with the same sampling, tools and tool_choice as given', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object' } } }];
    const r = await sent({
      prompt: '',
      messages: [{ role: 'user', content: 'hi' }],
      tools,
      toolChoice: 'required',
      sampling: { temperature: 0.1 },
    });
    expect(r.url).toBe('/v1/chat/completions');
    const b = json(r.body);
    expect(b).not.toHaveProperty('prompt');
    expect(b).toMatchObject({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      tools,
      tool_choice: 'required',
      temperature: 0.1,
      top_k: 40,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
      seed: 1,
      max_tokens: 16,
    });
  });

  it('countChatTokens posts a TokenizeChatRequest and returns its count', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'f' } }];
    const n = await adapter.countChatTokens(
      { prompt: '', messages: [{ role: 'user', content: 'hi' }], tools },
      AbortSignal.timeout(10_000),
    );
    expect(n).toBe(42);
    const last = seen.at(-1);
    expect(last?.url).toBe('/tokenize');
    expect(json(last?.body ?? '{}')).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      add_generation_prompt: true,
      tools,
    });
  });
});

describe('vLLM launch flags the adapter reads', () => {
  it('tool calling: both spellings of --tool-call-parser, --enable-auto-tool-choice', () => {
    expect(vllmToolCalling([])).toEqual({ autoToolChoice: false, parser: undefined });
    expect(vllmToolCalling(['--enable-auto-tool-choice', '--tool-call-parser', 'hermes'])).toEqual({
      autoToolChoice: true,
      parser: 'hermes',
    });
    expect(vllmToolCalling(['--tool-call-parser=llama3_json'])).toEqual({
      autoToolChoice: false,
      parser: 'llama3_json',
    });
  });

  it('a pooling process: --task embed or --runner pooling', () => {
    expect(vllmPoolingByArgs(['--task', 'embed'])).toBe(true);
    expect(vllmPoolingByArgs(['--runner=pooling'])).toBe(true);
    expect(vllmPoolingByArgs(['--task', 'generate'])).toBe(false);
  });
});
