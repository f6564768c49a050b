/**
 * The vLLM adapter's pure parts against transcripts derived from vLLM's source, both release
 * lines (before and since v0.10.1's error-body change; test/fixtures/vllm/README.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
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
