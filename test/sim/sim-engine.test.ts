/** The simulator's behaviour model, in process: slots, batching cost, prefix cache, ctx, tokens. */
import { describe, expect, it } from 'vitest';
import { SIM_DEFAULTS, SimEngine, SimError, type SimGenerateOptions } from '../../src/sim/sim-engine.js';

const engine = (o: Partial<typeof SIM_DEFAULTS> = {}) =>
  new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'v',
    tokensPerSecond: 100_000,
    prefillTokensPerSecond: 1e9,
    ...o,
  });

async function text(
  e: SimEngine,
  prompt: string,
  o: Partial<SimGenerateOptions> = {},
  signal = new AbortController().signal,
) {
  let out = '';
  const gen = e.generate(prompt, { maxTokens: 16, seed: 1, ...o }, signal);
  for (let n = await gen.next(); n.done !== true; n = await gen.next()) out += n.value.text;
  return out;
}

describe('SimEngine', () => {
  it('tokens are a function of (prompt, seed, sampler profile): same in → same out, any change → different', async () => {
    const a = engine();
    const b = engine();
    expect(await text(a, 'hello')).toBe(await text(b, 'hello'));
    expect(await text(a, 'hello', { seed: 2 })).not.toBe(await text(a, 'hello'));
    expect(await text(a, 'hello', { samplerProfile: 't=0.5' })).not.toBe(await text(a, 'hello'));
    expect(await text(a, 'hellO')).not.toBe(await text(a, 'hello'));
  });

  it('continuous batching: requests beyond the slots wait for a free slot', async () => {
    const e = engine({ slots: 2, tokensPerSecond: 50 });
    const ac = new AbortController();
    const runs = [0, 1, 2].map(() => text(e, 'p', { maxTokens: 1_000 }, ac.signal).catch(() => 'aborted'));
    await new Promise((r) => setTimeout(r, 30));
    expect([e.running, e.waiting]).toEqual([2, 1]);
    ac.abort(new Error('stop'));
    expect(await Promise.all(runs)).toEqual(['aborted', 'aborted', 'aborted']);
    expect([e.running, e.waiting]).toEqual([0, 0]);
  });

  it('decode slows per running neighbour; prefill costs only uncached tokens', () => {
    const e = engine({ tokensPerSecond: 200, batchSlowdown: 0.1, prefillTokensPerSecond: 1_000 });
    expect(e.perTokenMs(1)).toBe(5);
    expect(e.perTokenMs(3)).toBeCloseTo(6, 10);
    expect(e.prefillMs(500, 0)).toBe(500);
    expect(e.prefillMs(500, 400)).toBe(100);
  });

  it('prefix cache: a session turn extending an earlier prompt reuses its KV; LRU evicts beyond capacity', async () => {
    const e = engine({ kvCapacityTokens: 64 });
    await text(e, 'a'.repeat(30), { maxTokens: 1 });
    expect(e.stats.cachedPromptTokens).toBe(0);
    await text(e, `${'a'.repeat(30)} and more`, { maxTokens: 1 });
    expect(e.stats.cachedPromptTokens).toBe(31); // BOS + 30 bytes
    expect(e.kvUsage).toBeGreaterThan(0);
    // Two more distinct prompts overflow 64 tokens: the oldest sequences are evicted.
    await text(e, 'b'.repeat(30), { maxTokens: 1 });
    await text(e, 'c'.repeat(30), { maxTokens: 1 });
    expect(e.stats.evictions).toBeGreaterThan(0);
    const before = e.stats.cachedPromptTokens;
    await text(e, 'a'.repeat(30), { maxTokens: 1 });
    expect(e.stats.cachedPromptTokens - before).toBe(1); // only BOS is shared with what is left
    await text(e, 'x', { maxTokens: 1, cachePrompt: false });
    expect(e.kvUsage).toBeLessThanOrEqual(1);
  });

  it('refuses prompt + max_tokens over the context, and faults', async () => {
    const e = engine({ ctx: 32 });
    await expect(text(e, 'x'.repeat(30), { maxTokens: 8 })).rejects.toMatchObject({ kind: 'ctx' });
    e.faults = { refuse: true };
    await expect(text(e, 'x')).rejects.toBeInstanceOf(SimError);
    e.faults = { oomAfterTokens: 2 };
    await expect(text(e, 'x')).rejects.toMatchObject({ kind: 'oom' });
    e.faults = { loadingUntilMs: Date.now() + 60_000 };
    expect(e.loading()).toBe(true);
    await expect(text(e, 'x')).rejects.toMatchObject({ kind: 'loading' });
  });

  it('embeddings are deterministic unit vectors', () => {
    const e = engine();
    const v = e.embed('doc');
    expect(v).toEqual(engine().embed('doc'));
    expect(Math.hypot(...v)).toBeCloseTo(1, 10);
    expect(e.embed('other')).not.toEqual(v);
  });
});
