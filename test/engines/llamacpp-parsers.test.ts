/** llama.cpp adapter's pure parts against captured llama-server transcripts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { mapHttpError } from '../../src/engines/llamacpp/map-error.js';
import { mapTransportError } from '../../src/engines/transport-error.js';
import { toCompletionRequest } from '../../src/engines/llamacpp/map-request.js';
import { CompletionStreamParser } from '../../src/engines/llamacpp/parse-stream.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/llamacpp/${name}`, import.meta.url), 'utf8');

describe('CompletionStreamParser (llama-server /completion stream)', () => {
  it('accounts for every predicted token, including text withheld across frames', () => {
    const parser = new CompletionStreamParser();
    const events: EngineEvent[] = parseSse(fixture('completion-stream.sse')).flatMap((r) =>
      parser.push(r.data),
    );
    const tokens = events.filter((e): e is Extract<EngineEvent, { kind: 'tokens' }> => e.kind === 'tokens');
    const done = events.at(-1);
    // 18 prompt tokens (`tokens_evaluated`), 16 of them computed (`timings.prompt_n`; 2 were cached).
    expect(done).toEqual({
      kind: 'done',
      tokensIn: 18,
      tokensInUncached: 16,
      tokensOut: 16,
      stopReason: 'length',
      slotId: 0,
    });
    expect(tokens.reduce((n, e) => n + e.count, 0)).toBe(16);
    // The first frame released four tokens' text at once and reported only the last id.
    expect(tokens[0]).toMatchObject({ count: 4, ids: [133] });
    for (const t of tokens) expect(t.ids.length).toBeLessThanOrEqual(t.count);
  });

  it("names the slot that served the request from the final frame's id_slot", () => {
    const final = (idSlot: string) =>
      new CompletionStreamParser().push(
        `{"content":"","tokens":[],${idSlot}"stop":true,"stop_type":"limit","tokens_predicted":0,"tokens_evaluated":3}`,
      );
    expect(final('"id_slot":3,')).toEqual([
      { kind: 'done', tokensIn: 3, tokensOut: 0, stopReason: 'length', slotId: 3 },
    ]);
    // -1 is "no slot" (what partial frames carry): the slot stays unknown, as when it is absent.
    expect(final('"id_slot":-1,')[0]).not.toHaveProperty('slotId');
    expect(final('')[0]).not.toHaveProperty('slotId');
    const p = new CompletionStreamParser();
    expect(p.push('{"content":"a","tokens":[100],"stop":false,"id_slot":-1,"tokens_predicted":1}')).toEqual([
      { kind: 'tokens', count: 1, ids: [100], text: 'a' },
    ]);
  });

  it('maps stop types and rejects malformed frames and in-stream errors', () => {
    const p = new CompletionStreamParser();
    expect(
      p.push(
        '{"content":"","tokens":[],"stop":true,"stop_type":"eos","tokens_predicted":0,"tokens_evaluated":3}',
      ),
    ).toEqual([{ kind: 'done', tokensIn: 3, tokensOut: 0, stopReason: 'eos' }]);
    expect(() => new CompletionStreamParser().push('{not json')).toThrow(/malformed/);
    expect(() =>
      new CompletionStreamParser().push('{"error":{"code":500,"message":"boom","type":"server_error"}}'),
    ).toThrow(/boom/);
  });
});

describe('toCompletionRequest (sampler profile v1)', () => {
  const base = {
    prompt: 'p',
    maxTokens: 8,
    seed: 5,
    determinism: 'strict' as const,
    samplerProfileVersion: 'v1',
    cachePrompt: true,
  };
  it('samples with profile v1, streamed, returns token ids and passes the seed', () => {
    expect(toCompletionRequest(base)).toMatchObject({
      prompt: 'p',
      n_predict: 8,
      stream: true,
      return_tokens: true,
      seed: 5,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      cache_prompt: true,
      ignore_eos: false,
    });
  });
  it("never sends llama.cpp's 'random seed' value and refuses unknown profiles", () => {
    expect(toCompletionRequest({ ...base, seed: 0xffff_ffff }).seed).not.toBe(0xffff_ffff);
    expect(() => toCompletionRequest({ ...base, samplerProfileVersion: 'v9' })).toThrow(
      /sampler_profile_version/,
    );
  });
});

describe('llama-server error mapping', () => {
  it('maps statuses and transport failures to spec codes', () => {
    expect(mapHttpError(400, fixture('error-400.json'))).toMatchObject({
      code: 'INVALID_PARAMS',
      engine: 'llamacpp',
    });
    expect(mapHttpError(400, fixture('error-400.json')).message).toContain("Field 'n_predict'");
    expect(
      mapHttpError(503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}').code,
    ).toBe('POOL_UNREADY');
    expect(mapHttpError(500, 'oops').code).toBe('INTERNAL');
    // Slot actions on a server started without --slot-save-path: the message says what is missing.
    const noSlots = mapHttpError(501, fixture('slot-erase-501.json'));
    expect(noSlots.code).toBe('INTERNAL');
    expect(noSlots.message).toContain('--slot-save-path');
    expect(mapHttpError(400, fixture('slot-erase-400.json'))).toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringContaining('Invalid slot ID') as unknown,
    });
    expect(mapTransportError('llamacpp', Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).code).toBe(
      'WORKER_RESET',
    );
    expect(mapTransportError('llamacpp', Object.assign(new Error('other'), { code: 'EWHAT' })).code).toBe(
      'INTERNAL',
    );
  });
});
