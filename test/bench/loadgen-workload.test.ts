/** Synthetic workloads: seeded determinism, length distributions, shared prefixes, multi-turn requests. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sample, zipfIndex, type Distribution } from '../../bench/loadgen/distributions.js';
import { wordText } from '../../bench/loadgen/prompt-text.js';
import {
  loadWorkload,
  parseWorkloadSpec,
  planWorkload,
  requestFor,
  type WorkloadPlan,
  type WorkloadSpec,
} from '../../bench/loadgen/workload.js';
import { mulberry32 } from '../../src/util/mulberry32.js';

const SPEC: WorkloadSpec = {
  name: 'prop',
  seed: 1,
  api: 'chat',
  sessions: 12,
  turns: { kind: 'uniform', min: 1, max: 4 },
  prompt_tokens: { kind: 'lognormal', median: 20, sigma: 0.5, min: 2, max: 80 },
  output_tokens: { kind: 'normal', mean: 16, sd: 6, min: 1, max: 40 },
  think_ms: { kind: 'uniform', min: 0, max: 50 },
  shared_prefix: { prompts: 3, tokens: { kind: 'fixed', value: 40 }, zipf_s: 1 },
};

/**
 * Every request body of a plan, in order, as the bytes sent, with replies that are a function
 * of the request (as a deterministic server's are).
 */
function requestBytes(plan: WorkloadPlan, api: 'chat' | 'completions' = 'chat'): string {
  const p = { ...plan, spec: { ...plan.spec, api } };
  const out: string[] = [];
  for (const s of p.sessions) {
    const replies: string[] = [];
    for (let t = 0; t < s.turns.length; t++) {
      const body = JSON.stringify(requestFor(p, s, t, replies, { model: 'm' }));
      out.push(body);
      replies.push(`reply ${body.length}`);
    }
  }
  return out.join('\n');
}

const dist: fc.Arbitrary<Distribution> = fc.oneof(
  fc.nat(500).map((value) => ({ kind: 'fixed' as const, value })),
  fc
    .tuple(fc.nat(500), fc.nat(500))
    .map(([a, b]) => ({ kind: 'uniform' as const, min: Math.min(a, b), max: Math.max(a, b) })),
  fc
    .tuple(fc.integer({ min: -100, max: 600 }), fc.nat(200), fc.nat(100), fc.nat(600))
    .map(([mean, sd, min, span]) => ({ kind: 'normal' as const, mean, sd, min, max: min + span })),
  fc
    .tuple(
      fc.integer({ min: 1, max: 1000 }),
      fc.double({ min: 0, max: 2, noNaN: true }),
      fc.nat(100),
      fc.nat(2000),
    )
    .map(([median, sigma, min, span]) => ({
      kind: 'lognormal' as const,
      median,
      sigma,
      min,
      max: min + span,
    })),
);

const lo = (d: Distribution) => (d.kind === 'fixed' ? d.value : d.kind === 'uniform' ? d.min : (d.min ?? 0));
const hi = (d: Distribution) =>
  d.kind === 'fixed' ? d.value : d.kind === 'uniform' ? d.max : (d.max ?? Infinity);

describe('planWorkload', () => {
  it('gives a byte-identical request sequence for the same seed, and another for another seed', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), (seed) => {
        const spec = { ...SPEC, seed };
        const a = requestBytes(planWorkload(spec));
        expect(requestBytes(planWorkload(structuredClone(spec)))).toBe(a);
        expect(requestBytes(planWorkload({ ...spec, seed: (seed + 1) >>> 0 }))).not.toBe(a);
      }),
      { numRuns: 25 },
    );
  });

  it('plans the committed workloads identically on every run', () => {
    for (const name of ['synthetic', 'shared-prefix', 'multi-turn']) {
      const spec = loadWorkload(name);
      expect(spec.name).toBe(name);
      const plan = planWorkload(spec, { sessions: 50 });
      expect(requestBytes(planWorkload(loadWorkload(name), { sessions: 50 }))).toBe(requestBytes(plan));
    }
  });

  it('keeps the first sessions whatever the session count', () => {
    const few = planWorkload(SPEC, { sessions: 5 });
    const many = planWorkload(SPEC, { sessions: 40 });
    expect(many.systemPrompts).toEqual(few.systemPrompts);
    expect(many.sessions.slice(0, 5).map((s) => [s.prefix, s.turns])).toEqual(
      few.sessions.map((s) => [s.prefix, s.turns]),
    );
  });

  it('draws turns, prompt and output lengths within their distributions', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), dist, dist, (seed, prompt, output) => {
        const spec: WorkloadSpec = {
          ...SPEC,
          seed,
          sessions: 8,
          prompt_tokens: prompt,
          output_tokens: output,
        };
        for (const s of planWorkload(spec).sessions) {
          expect(s.turns.length).toBeGreaterThanOrEqual(1);
          expect(s.turns.length).toBeLessThanOrEqual(4);
          s.turns.forEach((t, i) => {
            const words = t.user.split(' ').length;
            // Lengths are at least 1: a request always has a question and asks for a token.
            expect(words).toBeGreaterThanOrEqual(Math.max(1, Math.round(lo(prompt))));
            expect(words).toBeLessThanOrEqual(Math.max(1, Math.round(hi(prompt))));
            expect(t.maxTokens).toBeGreaterThanOrEqual(Math.max(1, Math.round(lo(output))));
            expect(t.maxTokens).toBeLessThanOrEqual(Math.max(1, Math.round(hi(output))));
            expect(Number.isInteger(t.maxTokens)).toBe(true);
            if (i === 0) expect(t.thinkMs).toBe(0);
          });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('gives every session one of K system prompts and a unique user part', () => {
    const plan = planWorkload({ ...SPEC, sessions: 300 });
    expect(plan.systemPrompts).toHaveLength(3);
    // A fixed 40 tokens, after a distinct opening.
    plan.systemPrompts.forEach((p, k) => {
      expect(p.startsWith(`system ${k}: `)).toBe(true);
      expect(p.split(' ').length).toBe(42);
    });
    const firsts = plan.sessions.map((s) => requestFor(plan, s, 0, [], { model: 'm' }).body['messages']);
    for (const [i, m] of firsts.entries()) {
      const s = plan.sessions[i];
      expect(m).toEqual([
        { role: 'system', content: plan.systemPrompts[s?.prefix ?? -1] },
        { role: 'user', content: s?.turns[0]?.user },
      ]);
    }
    expect(new Set(plan.sessions.map((s) => s.turns[0]?.user)).size).toBe(300);
    expect(new Set(plan.sessions.map((s) => s.id)).size).toBe(300);
    // Zipf with s = 1 over 3 prompts: P = 6/11, 3/11, 2/11.
    const counts = [0, 1, 2].map((k) => plan.sessions.filter((s) => s.prefix === k).length);
    expect(counts[0]).toBeGreaterThan(counts[1] ?? 0);
    expect(counts[1]).toBeGreaterThan(counts[2] ?? 0);
  });

  it('resends the whole conversation with the replies given, then the new user message', () => {
    const plan = planWorkload({ ...SPEC, turns: { kind: 'fixed', value: 3 } });
    const s = plan.sessions[0];
    if (!s) throw new Error('no session');
    const { path, body } = requestFor(plan, s, 2, ['first reply', 'second reply'], {
      model: 'm',
      extra: { ignore_eos: true, model: 'not this one' },
    });
    expect(path).toBe('/v1/chat/completions');
    expect(body).toEqual({
      ignore_eos: true,
      model: 'm',
      max_tokens: s.turns[2]?.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
      user: s.id,
      messages: [
        { role: 'system', content: plan.systemPrompts[s.prefix ?? -1] },
        { role: 'user', content: s.turns[0]?.user },
        { role: 'assistant', content: 'first reply' },
        { role: 'user', content: s.turns[1]?.user },
        { role: 'assistant', content: 'second reply' },
        { role: 'user', content: s.turns[2]?.user },
      ],
    });
    const completion = requestFor(
      { ...plan, spec: { ...plan.spec, api: 'completions' } },
      s,
      1,
      ['first reply'],
      {
        model: 'm',
      },
    );
    expect(completion.path).toBe('/v1/completions');
    expect(completion.body['prompt']).toBe(
      `system: ${plan.systemPrompts[s.prefix ?? -1]}\nuser: ${s.turns[0]?.user}\nassistant: first reply\nuser: ${s.turns[1]?.user}\nassistant:`,
    );
  });

  it('refuses a spec with a wrong field, naming it', () => {
    expect(() => parseWorkloadSpec({ ...SPEC, turns: { kind: 'poisson', mean: 2 } })).toThrow(/\/turns/);
    expect(() => parseWorkloadSpec({ ...SPEC, sessions: 0 })).toThrow(/\/sessions/);
    expect(() => parseWorkloadSpec({ ...SPEC, extra: 1 })).toThrow(/invalid workload spec/);
  });
});

describe('distributions', () => {
  const draws = (d: Distribution, n = 20_000, seed = 7) => {
    const rng = mulberry32(seed);
    return Array.from({ length: n }, () => sample(d, rng));
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

  it('stays within bounds, in integers, and repeats for a seed (fast-check)', () => {
    fc.assert(
      fc.property(dist, fc.nat(0xffffffff), (d, seed) => {
        const xs = draws(d, 200, seed);
        expect(draws(d, 200, seed)).toEqual(xs);
        for (const x of xs) {
          expect(Number.isInteger(x)).toBe(true);
          expect(x).toBeGreaterThanOrEqual(Math.round(Math.max(0, lo(d))));
          expect(x).toBeLessThanOrEqual(Math.round(hi(d)));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('has the shape asked for: fixed, uniform, clipped normal, lognormal', () => {
    expect(new Set(draws({ kind: 'fixed', value: 64 }, 100))).toEqual(new Set([64]));
    const u = draws({ kind: 'uniform', min: 10, max: 20 });
    expect(new Set(u)).toEqual(new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]));
    expect(mean(u)).toBeCloseTo(15, 0);
    const n = draws({ kind: 'normal', mean: 100, sd: 20 });
    expect(mean(n)).toBeGreaterThan(99);
    expect(mean(n)).toBeLessThan(101);
    // Within one sd: about 68 %.
    expect(n.filter((x) => x >= 80 && x <= 120).length / n.length).toBeCloseTo(0.68, 1);
    const clipped = draws({ kind: 'normal', mean: 100, sd: 50, min: 90, max: 110 });
    expect(Math.min(...clipped)).toBe(90);
    expect(Math.max(...clipped)).toBe(110);
    const ln = draws({ kind: 'lognormal', median: 200, sigma: 0.8 });
    expect(median(ln) / 200).toBeGreaterThan(0.95);
    expect(median(ln) / 200).toBeLessThan(1.05);
    // Right-skewed: the mean exceeds the median by exp(σ²/2) ≈ 1.38.
    expect(mean(ln) / median(ln)).toBeGreaterThan(1.25);
  });

  it('picks Zipf-like: index k with probability ∝ 1/(k+1)^s', () => {
    const share = (s: number) => {
      const rng = mulberry32(3);
      const counts = [0, 0, 0, 0];
      for (let i = 0; i < 40_000; i++) {
        const k = zipfIndex(4, s, rng);
        counts[k] = (counts[k] ?? 0) + 1;
      }
      return counts.map((c) => c / 40_000);
    };
    const H = 1 + 1 / 2 + 1 / 3 + 1 / 4;
    share(1).forEach((p, k) => expect(p).toBeCloseTo(1 / (k + 1) / H, 2));
    share(0).forEach((p) => expect(p).toBeCloseTo(0.25, 2));
  });

  it('writes text of exactly N words from the list', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.nat(), (n, seed) => {
        const t = wordText(n, mulberry32(seed));
        expect(t.split(' ')).toHaveLength(n);
        expect(t).toBe(wordText(n, mulberry32(seed)));
        expect(t).toMatch(/^[a-z]+( [a-z]+)*$/);
      }),
      { numRuns: 50 },
    );
  });
});
