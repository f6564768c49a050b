/** vLLM, TGI and Triton adapters' pure parts against transcripts written from their documentation. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { mapTgiError } from '../../src/engines/tgi/map-error.js';
import { toTgiRequest } from '../../src/engines/tgi/map-request.js';
import { TgiStreamParser } from '../../src/engines/tgi/parse-stream.js';
import { mapVllmError } from '../../src/engines/vllm/map-error.js';
import { toVllmRequest } from '../../src/engines/vllm/map-request.js';
import { VllmStreamParser } from '../../src/engines/vllm/parse-stream.js';
import { gauge } from '../../src/util/prom-text.js';
import { parseSse } from '../../src/util/sse-parser.js';

const fixture = (engine: string, name: string) =>
  readFileSync(new URL(`../fixtures/${engine}/${name}`, import.meta.url), 'utf8');

function parse(text: string, push: (data: string) => EngineEvent[]): EngineEvent[] {
  return parseSse(text).flatMap((r) => push(r.data));
}

const tokens = (evs: readonly EngineEvent[]) =>
  evs.filter((e): e is Extract<EngineEvent, { kind: 'tokens' }> => e.kind === 'tokens');

const req: GenerateRequest = {
  prompt: 'p',
  maxTokens: 8,
  seed: 2 ** 40 + 5,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

describe('vLLM', () => {
  it('counts tokens from continuous usage, even when a chunk carries two', () => {
    const p = new VllmStreamParser();
    const evs = parse(fixture('vllm', 'completion-stream.sse'), (d) => p.push(d));
    expect(tokens(evs).map((t) => t.count)).toEqual([1, 2, 1, 1]);
    expect(
      tokens(evs)
        .map((t) => t.text)
        .join(''),
    ).toBe(' The café is open');
    expect(evs.at(-1)).toEqual({ kind: 'done', tokensIn: 5, tokensOut: 5, stopReason: 'length' });
    expect(p.done).toBe(true);
  });

  it('without usage, one token per non-empty chunk; finish "stop" is end of sequence', () => {
    const p = new VllmStreamParser();
    const evs = parse(fixture('vllm', 'completion-stream-no-usage.sse'), (d) => p.push(d));
    expect(evs).toEqual([
      { kind: 'tokens', count: 1, ids: [], text: ' Hello' },
      { kind: 'done', tokensIn: 0, tokensOut: 1, stopReason: 'eos' },
    ]);
  });

  it('an error event mid-stream → WORKER_RESET for CUDA OOM', () => {
    const p = new VllmStreamParser();
    expect(() => parse(fixture('vllm', 'error-stream.sse'), (d) => p.push(d))).toThrow(
      expect.objectContaining({ code: 'WORKER_RESET', engine: 'vllm' }),
    );
  });

  it('maps HTTP errors of both body shapes to spec codes', () => {
    for (const f of ['error-400.json', 'error-400-legacy.json']) {
      const err = mapVllmError(400, fixture('vllm', f));
      expect(err.code).toBe('INVALID_PARAMS');
      expect(err.message).toContain('maximum context length is 4096');
    }
    expect(
      mapVllmError(503, '{"error":{"message":"The model is still loading","type":"x","code":503}}').code,
    ).toBe('POOL_UNREADY');
    expect(
      mapVllmError(503, '{"error":{"message":"waiting queue is full","type":"x","code":503}}').code,
    ).toBe('REPLICA_EXHAUSTED');
    expect(mapVllmError(401, '{"error":"Unauthorized"}').message).toMatch(/api_key/);
    expect(mapVllmError(500, 'boom').code).toBe('INTERNAL');
  });

  it('sampler profile v1: seeded sampling with exact usage, seed passed as is', () => {
    expect(toVllmRequest(req, 'm')).toMatchObject({
      model: 'm',
      prompt: 'p',
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true },
      seed: 2 ** 40 + 5,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
    });
    expect(() => toVllmRequest({ ...req, samplerProfileVersion: 'v2' }, 'm')).toThrow(
      /sampler_profile_version/,
    );
  });

  it('reads slot use from its metrics', () => {
    expect(gauge(fixture('vllm', 'metrics.txt'), 'vllm:num_requests_running')).toBe(3);
  });
});

describe('TGI', () => {
  it('one token per event; the special EOS token counts but has no text; details end it', () => {
    const p = new TgiStreamParser();
    const evs = parse(fixture('tgi', 'generate-stream.sse'), (d) => p.push(d));
    expect(tokens(evs).map((t) => [t.ids, t.text])).toEqual([
      [[415], ' The'],
      [[2936], ' sky'],
      [[349], ' is'],
      [[2], ''],
    ]);
    expect(evs.at(-1)).toEqual({ kind: 'done', tokensIn: 6, tokensOut: 4, stopReason: 'eos' });
  });

  it('an error event mid-stream → WORKER_RESET for CUDA OOM', () => {
    const p = new TgiStreamParser();
    expect(() => parse(fixture('tgi', 'generate-stream-error.sse'), (d) => p.push(d))).toThrow(
      expect.objectContaining({ code: 'WORKER_RESET', engine: 'tgi' }),
    );
  });

  it('maps error types to spec codes', () => {
    expect(mapTgiError(422, fixture('tgi', 'error-422.json')).code).toBe('INVALID_PARAMS');
    expect(mapTgiError(429, fixture('tgi', 'error-429.json')).code).toBe('REPLICA_EXHAUSTED');
    expect(mapTgiError(503, '{"error":"unhealthy","error_type":"healthcheck"}').code).toBe('POOL_UNREADY');
    expect(
      mapTgiError(424, '{"error":"Request failed during generation: boom","error_type":"generation"}').code,
    ).toBe('INTERNAL');
  });

  it('sampler profile v1: do_sample with the seed and details on', () => {
    expect(toTgiRequest(req)).toEqual({
      inputs: 'p',
      parameters: {
        max_new_tokens: 8,
        seed: 2 ** 40 + 5,
        do_sample: true,
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        details: true,
        return_full_text: false,
        decoder_input_details: false,
        repetition_penalty: 1,
        stop: [],
      },
    });
  });
});

// Triton / TensorRT-LLM: test/engines/triton-wire.test.ts (ensembles differ in what they declare).
