/** The load generator's report on a hand-made timeline: every figure computed by hand. */
import { describe, expect, it } from 'vitest';
import { meetsSlo, reportTable, summarize, SPEC_INTERACTIVE_SLO } from '../../bench/loadgen/metrics.js';
import type { RequestRecord } from '../../bench/loadgen/stream-request.js';

const rec = (r: Partial<RequestRecord> & Pick<RequestRecord, 'sendMs' | 'endMs'>): RequestRecord => {
  const tokenTimesMs = r.tokenTimesMs ?? [];
  return {
    session: 's',
    turn: 0,
    firstTokenMs: tokenTimesMs[0],
    tokenTimesMs,
    outputTokens: r.usageTokens ?? tokenTimesMs.length,
    usageTokens: undefined,
    promptTokens: undefined,
    status: 200,
    error: undefined,
    ...r,
  };
};

// A: 4 tokens, fast. B: first token after 1000 ms (misses the 900 ms TTFT). C: 128 tokens in two
// chunks, 4900 ms end to end (within the scaled budget 2500 × 128/64 = 5000 ms, over an
// unscaled 2500). D: refused with 429. E: cut before [DONE]. F: no usage chunk (tokens counted
// from chunks).
const A = rec({ sendMs: 0, tokenTimesMs: [100, 120, 150, 190], endMs: 200, usageTokens: 4 });
const B = rec({ sendMs: 50, tokenTimesMs: [1050, 1060], endMs: 1070, usageTokens: 2 });
const C = rec({ sendMs: 100, tokenTimesMs: [400, 5000], endMs: 5000, usageTokens: 128 });
const D = rec({ sendMs: 10, endMs: 15, status: 429, error: 'http_429' });
const E = rec({ sendMs: 20, tokenTimesMs: [300], endMs: 400, error: 'incomplete' });
const F = rec({ sendMs: 0, tokenTimesMs: [500, 600, 700], endMs: 800 });
const TIMELINE = [A, B, C, D, E, F];

describe('summarize', () => {
  const r = summarize(TIMELINE, 10);

  it('counts requests, completions and errors by status', () => {
    expect(r.requests).toBe(6);
    expect(r.completed).toBe(4);
    expect(r.errors).toBe(2);
    expect(r.errorsByStatus).toEqual({ http_429: 1, incomplete: 1 });
    expect(r.usageTokens).toBe(134);
    expect(r.withUsage).toBe(3);
  });

  it('takes TTFT, TPOT, ITL and E2E percentiles of completed requests (nearest rank)', () => {
    // TTFT of A, B, C, F: 100, 1000, 300, 500.
    expect(r.ttftMs).toEqual({ p50: 500, p90: 1000, p99: 1000 });
    // TPOT: A (200−100)/3, B (1020−1000)/1, C (4900−300)/127, F (800−500)/2.
    expect(r.tpotMs).toEqual({ p50: 4600 / 127, p90: 150 });
    // ITL: A 20, 30, 40; B 10; C 4600; F 100, 100.
    expect(r.itlMs).toEqual({ p50: 40, p90: 4600, p99: 4600 });
    expect(r.e2eMs).toEqual({ p50: 1020, p90: 4900, p99: 4900 });
  });

  it('rates completions, output tokens and goodput over the run time', () => {
    expect(r.requestsPerS).toBeCloseTo(0.4, 12);
    expect(r.outputTokensPerS).toBeCloseTo(13.7, 12);
    // A, C and F meet the SPEC §15 interactive SLO; B misses TTFT; D and E failed.
    expect(r.goodputPerS).toBeCloseTo(0.3, 12);
    expect(r.sloAttainment).toBe(0.5);
  });

  it('reports NaN percentiles and rates of 0 for a run with no completion', () => {
    const none = summarize([D], 1);
    expect(none.ttftMs.p50).toBeNaN();
    expect(none.requestsPerS).toBe(0);
    expect(reportTable([{ target: 't', load: 'l', report: none }])).toContain('| 0/1 ');
  });
});

describe('meetsSlo', () => {
  it('scales the end-to-end budget with output tokens, with a floor of one 64-token budget', () => {
    expect([A, B, C, D, E, F].map((x) => meetsSlo(x, SPEC_INTERACTIVE_SLO))).toEqual([
      true,
      false,
      true,
      false,
      false,
      true,
    ]);
    // C needs the scaling: its 4900 ms would miss a flat 2500 ms budget, and a 2400 ms/64 one.
    expect(meetsSlo(C, { ttftMs: 900, e2eMsPer64Tokens: 2400 })).toBe(false);
    // A 4-token request is held to a whole 64-token budget, not 4/64 of it.
    expect(
      meetsSlo(rec({ sendMs: 0, tokenTimesMs: [10], endMs: 2500, usageTokens: 4 }), SPEC_INTERACTIVE_SLO),
    ).toBe(true);
    expect(
      meetsSlo(rec({ sendMs: 0, tokenTimesMs: [10], endMs: 2501, usageTokens: 4 }), SPEC_INTERACTIVE_SLO),
    ).toBe(false);
  });

  it('takes configured thresholds', () => {
    expect(meetsSlo(B, { ttftMs: 1000, e2eMsPer64Tokens: 2500 })).toBe(true);
    expect(summarize(TIMELINE, 10, { ttftMs: 1000, e2eMsPer64Tokens: 2500 }).goodputPerS).toBeCloseTo(
      0.4,
      12,
    );
  });
});
