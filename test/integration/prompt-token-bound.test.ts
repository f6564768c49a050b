/**
 * Admission without a tokenizer round trip, against real llama.cpp simulator processes (whose
 * tokenizer is BOS plus one token per UTF-8 byte, and whose `/v1/models` states a BPE vocabulary): a prompt that fits by its byte bound reaches no
 * `/tokenize`; one near the limit is counted; no prompt length around the limit is wrongly
 * admitted or refused; and `prompt_tokens` on the OpenAI surface stays the engine's count.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { lookUpVocabulary, SPECIAL_TOKENS_BOUND } from '../../src/orchestrator/prompt-token-bound.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  type Harness,
} from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [simPool('bound', 'llamacpp', { queue: { capacity: 1_000 }, sim: { tokens_per_s: 20_000 } })],
  });
  // The vocabulary type is read once from the engine (`GET /v1/models`); until then prompts are counted.
  expect(await lookUpVocabulary(pool())).toBe(true);
});
afterAll(async () => {
  await h.close();
});

const CTX = 256;
const MAX_TOKENS = 8;

const pool = (): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === 'bound');
  if (!p) throw new Error('no pool');
  return p;
};

/** `/tokenize` calls the simulator has served. */
async function tokenizeCalls(): Promise<number> {
  const replica = pool().readyReplicas()[0];
  if (!replica) throw new Error('no ready replica');
  const state = (await (await fetch(`${replica.adapter.baseUrl}/__sim/state`)).json()) as {
    stats: { tokenizeRequests: number };
  };
  return state.stats.tokenizeRequests;
}

/** A far deadline: a deadline the bound's cost might miss is counted exactly, and is not tested here. */
const submit = (prompt: string) =>
  call(h.url, 'POST', '/v1/tasks', {
    key: KEYS.alice,
    body: task('bound', {
      engine: 'llamacpp',
      ctx: CTX,
      prompt,
      max_tokens: MAX_TOKENS,
      deadline_ms: 86_400_000,
    }),
  });

describe('the byte bound at admission', () => {
  it('a prompt that fits by its bytes is admitted without a tokenizer call; one near the limit is counted', async () => {
    const before = await tokenizeCalls();
    const small = await submit('Once upon a time');
    expect(small.status).toBe(202);
    expect(await tokenizeCalls()).toBe(before);
    // Exactly at the limit (BOS + bytes + max_tokens = ctx): not provable by the bound.
    const edge = await submit('x'.repeat(CTX - MAX_TOKENS - 1));
    expect(edge.status).toBe(202);
    expect(await tokenizeCalls()).toBe(before + 1);
  });

  it('no prompt length around the limit is wrongly admitted or refused (the engine count decides)', async () => {
    const pieces = ['a', ' ', 'é', '€', '𝄞'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...pieces), { minLength: 60, maxLength: 260 }),
        async (chars) => {
          const prompt = chars.join('');
          const tokens = Buffer.byteLength(prompt, 'utf8') + 1;
          const before = await tokenizeCalls();
          const r = await submit(prompt);
          if (r.status !== 202 && r.status !== 400) throw new Error(`${r.status}: ${r.text}`);
          expect(r.status).toBe(tokens + MAX_TOKENS <= CTX ? 202 : 400);
          const bounded = tokens - 1 + SPECIAL_TOKENS_BOUND + MAX_TOKENS <= CTX;
          expect(await tokenizeCalls()).toBe(bounded ? before : before + 1);
          // Canceled at once: the queue stays short while the property runs.
          if (r.status === 202)
            await call(h.url, 'POST', `/v1/tasks/${(r.json as { task_id: string }).task_id}/cancel`, {
              key: KEYS.alice,
            });
          if (r.status === 400)
            expect((r.json as { message: string }).message).toMatch(
              new RegExp(`^max_tokens: prompt \\(${tokens} tokens\\)`),
            );
        },
      ),
      { numRuns: 60, seed: 20_261_201 },
    );
  });

  it("the stream's tokens_in and OpenAI usage.prompt_tokens are the engine's count, not the bound", async () => {
    const prompt = 'Once upon a time';
    const r = await submit(prompt);
    const { events } = await readStream(h.url, (r.json as { task_id: string }).task_id, { key: KEYS.alice });
    const end = events.find((e) => e.event === 'end');
    expect(end?.data['tokens_in']).toBe(prompt.length + 1);
    const before = await tokenizeCalls();
    const o = await call(h.url, 'POST', '/v1/completions', {
      key: KEYS.alice,
      body: { model: 'bound', prompt, max_tokens: MAX_TOKENS },
    });
    expect(o.status).toBe(200);
    expect(await tokenizeCalls()).toBe(before);
    expect((o.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(prompt.length + 1);
  });
});
