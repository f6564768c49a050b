/**
 * The engine-neutral chat-completions stream parser against vLLM chat transcripts written from its
 * source (test/fixtures/vllm/README.md): token counts from continuous usage, stop reasons, tool
 * calls assembled from their fragments, error events.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { OpenAiChatStreamParser } from '../../src/engines/openai-chat-stream.js';
import { vllmStreamFailure } from '../../src/engines/vllm/map-error.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/vllm/${name}`, import.meta.url), 'utf8');

function parse(name: string): EngineEvent[] {
  const p = new OpenAiChatStreamParser({ engine: 'vllm', streamError: vllmStreamFailure });
  return parseSse(fixture(name)).flatMap((r) => p.push(r.data));
}

const done = (evs: EngineEvent[]) => {
  const d = evs.at(-1);
  if (d?.kind !== 'done') throw new Error('no done event');
  return d;
};
const tokens = (evs: EngineEvent[]) => evs.filter((e) => e.kind === 'tokens');

describe('OpenAI chat stream parser', () => {
  it('content deltas with continuous usage: counts are the engine’s, prompt tokens from usage, EOS', () => {
    const evs = parse('chat-stream.sse');
    expect(tokens(evs).map((e) => [e.count, e.text])).toEqual([
      [1, 'Hello'],
      [2, ' café'],
      [2, '!'],
    ]);
    expect(done(evs)).toEqual({ kind: 'done', tokensIn: 18, tokensOut: 5, stopReason: 'eos' });
  });

  it('a stop string: held-back text still counts its tokens, stop_reason set → "stop"', () => {
    const evs = parse('chat-stream-stop.sse');
    expect(tokens(evs).reduce((n, e) => n + e.count, 0)).toBe(5);
    expect(
      tokens(evs)
        .map((e) => e.text)
        .join(''),
    ).toBe('One, two');
    expect(done(evs)).toMatchObject({ tokensOut: 5, stopReason: 'stop' });
  });

  it('without usage: one token per content chunk, "length"', () => {
    const evs = parse('chat-stream-no-usage.sse');
    expect(tokens(evs).map((e) => e.count)).toEqual([1, 1]);
    expect(done(evs)).toMatchObject({ tokensIn: 0, tokensOut: 2, stopReason: 'length' });
  });

  it('tool calls: fragments assembled per index, ids kept, finish "tool_calls"; their tokens counted without text', () => {
    const evs = parse('chat-stream-tool-calls.sse');
    const d = done(evs);
    expect(d.stopReason).toBe('tool_calls');
    expect(d.tokensOut).toBe(21);
    expect(tokens(evs).reduce((n, e) => n + e.count, 0)).toBe(21);
    expect(tokens(evs).every((e) => e.text === '')).toBe(true);
    expect(d.toolCalls).toEqual([
      {
        id: 'chatcmpl-tool-3f6a1c9e0b7d4a2e8c5f1b3d7e9a0c2f',
        type: 'function',
        function: { name: 'get_weather', arguments: '{"city": "Paris"}' },
      },
      {
        id: 'chatcmpl-tool-9d2b7f4a1e6c4b0a8f3e5c7a9b1d2e4f',
        type: 'function',
        function: { name: 'get_time', arguments: '{"tz": "CET"}' },
      },
    ]);
    expect(JSON.parse(d.toolCalls?.[0]?.function.arguments ?? '')).toEqual({ city: 'Paris' });
  });

  it('an error event is thrown as the engine maps it (a dead engine core → WORKER_RESET)', () => {
    expect(() => parse('chat-stream-error.sse')).toThrow(OrchError);
    try {
      parse('chat-stream-error.sse');
    } catch (err) {
      expect(err).toMatchObject({ code: 'WORKER_RESET', engine: 'vllm' });
    }
  });

  it('a malformed chunk is WORKER_RESET naming the engine', () => {
    const p = new OpenAiChatStreamParser({ engine: 'tgi', streamError: vllmStreamFailure });
    expect(() => p.push('{not json')).toThrow(/tgi sent a malformed stream chunk/);
  });

  it('TGI’s finish reasons and fragments without ids', () => {
    const p = new OpenAiChatStreamParser({ engine: 'tgi', streamError: vllmStreamFailure });
    p.push(JSON.stringify({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: 'eos_token' }] }));
    expect(p.push('[DONE]')).toEqual([{ kind: 'done', tokensIn: 0, tokensOut: 1, stopReason: 'eos' }]);
    const q = new OpenAiChatStreamParser({ engine: 'llamacpp', streamError: vllmStreamFailure });
    q.push(
      JSON.stringify({
        choices: [
          { index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{}' } }] } },
        ],
      }),
    );
    q.push(JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }));
    const [d] = q.push('[DONE]');
    expect(d).toMatchObject({
      stopReason: 'tool_calls',
      toolCalls: [{ id: 'call_0', type: 'function', function: { name: 'f', arguments: '{}' } }],
    });
  });
});
