/**
 * The simulator's paged prefix cache (`kvBlockTokens`, the vLLM dialect): a prefix shared by
 * many cached prompts takes its blocks once, so a replica serving one long system prompt keeps
 * it however many of its requests come by, and eviction takes the least recently used blocks.
 */
import { describe, expect, it } from 'vitest';
import { SIM_DEFAULTS, SimEngine } from '../../src/sim/sim-engine.js';

const engine = (o: Partial<typeof SIM_DEFAULTS> & { kvBlockTokens?: number } = {}) =>
  new SimEngine({
    ...SIM_DEFAULTS,
    modelId: 'm',
    engineVersion: 'v',
    tokensPerSecond: 100_000,
    prefillTokensPerSecond: 1e9,
    ...o,
  });

async function run(e: SimEngine, prompt: string): Promise<number> {
  const before = e.stats.cachedPromptTokens;
  const gen = e.generate(prompt, { maxTokens: 1, seed: 1 }, new AbortController().signal);
  for (let n = await gen.next(); n.done !== true; n = await gen.next());
  return e.stats.cachedPromptTokens - before;
}

const SYSTEM = 's'.repeat(1_023); // with BOS: 64 blocks of 16
const OTHER = 'o'.repeat(1_023);

describe('SimEngine paged prefix cache', () => {
  it('holds a shared prefix once: many prompts on one system prompt leave room for another', async () => {
    // 160 blocks: both system prompts (128 blocks) and the tails fit only if shared blocks count once.
    const paged = engine({ kvCapacityTokens: 160 * 16, kvBlockTokens: 16 });
    const whole = engine({ kvCapacityTokens: 160 * 16 });
    for (const e of [paged, whole]) {
      await run(e, `${OTHER} first question`);
      for (let k = 0; k < 6; k++) await run(e, `${SYSTEM} question number ${k}`);
    }
    // Whole sequences: six copies of SYSTEM pushed OTHER out.
    expect(await run(whole, `${OTHER} second question`)).toBe(1);
    expect(await run(paged, `${OTHER} second question`)).toBe(1_024);
    expect(paged.kvUsage).toBeLessThanOrEqual(1);
  });

  it('matches whole blocks only, and evicts the least recently used blocks, a tail before its head', async () => {
    const e = engine({ kvCapacityTokens: 80 * 16, kvBlockTokens: 16 });
    await run(e, SYSTEM);
    // BOS + 1,023 bytes + 10 more: the 64 full blocks of SYSTEM are cached, not the partial one.
    expect(await run(e, `${SYSTEM}0123456789`)).toBe(1_024);
    // 64 new blocks overflow 80: the oldest 48 of SYSTEM's go, its tail first.
    await run(e, OTHER);
    expect(e.stats.evictions).toBeGreaterThan(0);
    expect(await run(e, SYSTEM)).toBe(16 * 16);
  });
});
