/**
 * The TGI adapter's pure parts against transcripts derived from TGI's source, for the releases
 * before and since v2.3.0 (stream `input_length`) and v2.1.0 (`/info` field names);
 * test/fixtures/tgi/README.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { OpenAiChatStreamParser } from '../../src/engines/openai-chat-stream.js';
import { toTgiChatRequest, toTgiRequest } from '../../src/engines/tgi/map-request.js';
import { TgiStreamParser } from '../../src/engines/tgi/parse-stream.js';
import { StopTrim } from '../../src/engines/tgi/stop-trim.js';
import { tgiCapabilities } from '../../src/engines/tgi/support.js';
import { OrchError } from '../../src/errors/orch-error.js';
import type { ChatTokenizeResponse, Info } from '../../src/engines/tgi/wire-types.js';
import { gauge } from '../../src/util/prom-text.js';
import { releasedBefore } from '../../src/util/release-version.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tgi/${name}`, import.meta.url), 'utf8');

function parse(name: string): { evs: EngineEvent[]; p: TgiStreamParser } {
  const p = new TgiStreamParser();
  return { evs: parseSse(fixture(name)).flatMap((r) => p.push(r.data)), p };
}

describe('TGI streams, both release lines', () => {
  it('v2.3.0 and later: prompt tokens from details.input_length', () => {
    const { evs, p } = parse('generate-stream.sse');
    expect(p.inputLengthReported).toBe(true);
    expect(evs.at(-1)).toEqual({ kind: 'done', tokensIn: 6, tokensOut: 4, stopReason: 'eos' });
  });

  it('1.x: details without input_length; the parser says so, for the adapter to count them', () => {
    const { evs, p } = parse('generate-stream-1x.sse');
    expect(p.done).toBe(true);
    expect(p.inputLengthReported).toBe(false);
    expect(evs.filter((e) => e.kind === 'tokens').map((e) => (e.kind === 'tokens' ? e.text : ''))).toEqual([
      ' The',
      ' sky',
      '',
    ]);
    expect(evs.at(-1)).toMatchObject({ kind: 'done', tokensOut: 3, stopReason: 'eos' });
  });

  it('a stop sequence ends with stopReason "stop"', () => {
    expect(parse('generate-stream-stop.sse').evs.at(-1)).toMatchObject({ stopReason: 'stop', tokensIn: 5 });
  });
});

describe('TGI /info and /metrics', () => {
  it('the release decides the stream shape: 1.4.5 and 2.2 are before 2.3.0, 3.0.1 is not', () => {
    const old = JSON.parse(fixture('info-1x.json')) as Info;
    const current = JSON.parse(fixture('info.json')) as Info;
    expect(releasedBefore(old.version, [2, 3, 0])).toBe(true);
    expect(releasedBefore('2.2.0', [2, 3, 0])).toBe(true);
    expect(releasedBefore(current.version, [2, 3, 0])).toBe(false);
    expect(old.max_input_length).toBe(1024);
    expect(current.max_input_tokens).toBe(4095);
  });

  it('token metrics are histograms named as TGI documents them (no _total counters)', () => {
    const text = fixture('metrics.txt');
    expect(text).toMatch(/^# TYPE tgi_request_generated_tokens histogram$/m);
    expect(text).toMatch(/^# TYPE tgi_request_input_length histogram$/m);
    expect(text).not.toMatch(/_total\b/);
    expect(gauge(text, 'tgi_batch_current_size')).toBe(5);
  });
});

const base: GenerateRequest = {
  prompt: 'Hello',
  maxTokens: 16,
  seed: 7,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

describe('TGI /generate_stream parameters', () => {
  it('a request without sampling fields is byte-identical to profile v1 as it always was', () => {
    expect(JSON.stringify(toTgiRequest(base))).toBe(
      '{"inputs":"Hello","parameters":{"max_new_tokens":16,"seed":7,"do_sample":true,"temperature":0.8,' +
        '"top_k":40,"top_p":0.95,"details":true,"return_full_text":false,"decoder_input_details":false,' +
        '"repetition_penalty":1,"stop":[]}}',
    );
  });

  it('the sampling fields, stop and a JSON schema map to TGI parameters', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    const p = toTgiRequest({
      ...base,
      sampling: { temperature: 0.3, topP: 0.5, topK: 7, repeatPenalty: 1.1, frequencyPenalty: 0.4 },
      stop: ['###'],
      responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema } },
    }).parameters;
    expect(p).toMatchObject({
      do_sample: true,
      temperature: 0.3,
      top_p: 0.5,
      top_k: 7,
      repetition_penalty: 1.1,
      frequency_penalty: 0.4,
      stop: ['###'],
      grammar: { type: 'json', value: schema },
    });
  });

  it('temperature 0 is greedy; top_p 1 and top_k 0 (no limit) are left out, as TGI refuses them', () => {
    const greedy = toTgiRequest({ ...base, sampling: { temperature: 0 } }).parameters;
    expect(greedy.do_sample).toBe(false);
    expect(greedy).not.toHaveProperty('temperature');
    expect(greedy).not.toHaveProperty('top_k');
    expect(greedy).not.toHaveProperty('top_p');
    const open = toTgiRequest({ ...base, sampling: { topP: 1, topK: 0 } }).parameters;
    expect(open).not.toHaveProperty('top_p');
    expect(open).not.toHaveProperty('top_k');
    expect(open.temperature).toBe(0.8);
  });

  it('json_object is the schema {"type":"object"} (TGI before v2.3.0 only)', () => {
    expect(toTgiRequest({ ...base, responseFormat: { type: 'json_object' } }).parameters.grammar).toEqual({
      type: 'json',
      value: { type: 'object' },
    });
  });
});

describe('TGI Messages API request', () => {
  const chat: GenerateRequest = { ...base, prompt: '', messages: [{ role: 'user', content: 'Hi' }] };

  it('profile values, usage asked for, model "tgi" (another name would be a LoRA adapter id)', () => {
    expect(toTgiChatRequest(chat)).toEqual({
      model: 'tgi',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 16,
      seed: 7,
      temperature: 0.8,
      top_p: 0.95,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('repeat_penalty becomes presence_penalty - 2 (TGI adds 2 back); tools and tool_choice pass through', () => {
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object' } } }];
    const r = toTgiChatRequest({
      ...chat,
      sampling: { repeatPenalty: 1.25, frequencyPenalty: -0.5, temperature: 0 },
      stop: ['\n'],
      tools,
      toolChoice: { type: 'function', function: { name: 'f' } },
    });
    expect(r.presence_penalty).toBeCloseTo(-0.75, 10);
    expect(r).toMatchObject({ frequency_penalty: -0.5, temperature: 0, stop: ['\n'], tools });
    expect(r.tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
  });
});

describe('TGI releases: what each honours', () => {
  it('frequency_penalty and grammar since v1.4.1, chat since v2.3.0, tools since v3.2.0', () => {
    const caps = (version: string) => tgiCapabilities({ version });
    expect(caps('1.4.0')).toMatchObject({
      frequencyPenalty: false,
      grammar: false,
      chat: false,
      tools: false,
    });
    expect(caps('1.4.1')).toMatchObject({
      frequencyPenalty: true,
      grammar: true,
      grammarNeedsProperties: false,
    });
    expect(caps('2.3.0')).toMatchObject({ chat: true, grammarNeedsProperties: true, tools: false });
    expect(caps('3.2.0')).toMatchObject({ tools: true, maxStopSequences: 4 });
    expect(tgiCapabilities({ version: '3.3.6', max_stop_sequences: 6 }).maxStopSequences).toBe(6);
  });
});

describe('TGI stop sequences stay in its text; the adapter cuts them', () => {
  const tokens = (...texts: string[]): EngineEvent[] =>
    texts.map((text) => ({ kind: 'tokens', count: 1, ids: [], text }));
  const done: EngineEvent = { kind: 'done', tokensIn: 1, tokensOut: 4, stopReason: 'stop' };

  it('text that may start the stop sequence is held back, the sequence itself is dropped, counts stay', () => {
    const trim = new StopTrim(['XYZ']);
    const out = [...tokens('ab', 'cX', 'Y', 'Z'), done].flatMap((ev) => trim.push(ev));
    expect(out.map((e) => (e.kind === 'tokens' ? e.text : '|')).join('')).toBe('abc|');
    expect(
      out.filter((e) => e.kind === 'tokens').reduce((n, e) => n + (e.kind === 'tokens' ? e.count : 0), 0),
    ).toBe(4);
  });

  it('held text that was no stop sequence comes out before done', () => {
    const trim = new StopTrim(['XYZ']);
    const out = [...tokens('ab', 'X'), { ...done, stopReason: 'length' as const }].flatMap((ev) =>
      trim.push(ev),
    );
    expect(out.map((e) => (e.kind === 'tokens' ? e.text : '|')).join('')).toBe('abX|');
  });

  it('the Messages API fixture: stop_sequence reads as "stop", with the text cut', () => {
    const p = new OpenAiChatStreamParser({
      engine: 'tgi',
      streamError: () => new OrchError('INTERNAL', 'x'),
    });
    const trim = new StopTrim(['.']);
    const evs = parseSse(fixture('chat-stream-stop.sse'))
      .flatMap((r) => p.push(r.data))
      .flatMap((ev) => trim.push(ev));
    expect(evs.map((e) => (e.kind === 'tokens' ? e.text : '')).join('')).toBe('The sky is blue');
    expect(evs.at(-1)).toMatchObject({ kind: 'done', stopReason: 'stop', tokensIn: 12, tokensOut: 5 });
  });
});

describe('TGI Messages API fixtures', () => {
  it('a tool call: name first, arguments "{" then fragments, no finish_reason, usage on its own', () => {
    const p = new OpenAiChatStreamParser({
      engine: 'tgi',
      streamError: () => new OrchError('INTERNAL', 'x'),
    });
    const evs = parseSse(fixture('chat-stream-tool.sse')).flatMap((r) => p.push(r.data));
    const last = evs.at(-1);
    expect(last).toMatchObject({ kind: 'done', tokensIn: 210, tokensOut: 17 });
    // No finish_reason reached the client: the adapter reports the assembled calls as tool_calls.
    expect(last?.kind === 'done' ? last.stopReason : '').toBe('unknown');
    const call = last?.kind === 'done' ? last.toolCalls?.[0] : undefined;
    expect(call).toMatchObject({ id: '0', function: { name: 'get_weather' } });
    expect(JSON.parse(call?.function.arguments ?? '')).toEqual({ location: 'Paris' });
  });

  it('/chat_tokenize answers the templated text and its tokens', () => {
    const r = JSON.parse(fixture('chat-tokenize.json')) as ChatTokenizeResponse;
    expect(r.tokenize_response).toHaveLength(11);
    expect(r.templated_text).toMatch(/assistant<\|end_header_id\|>\n\n$/);
  });
});
