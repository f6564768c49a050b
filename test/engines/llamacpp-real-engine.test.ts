/**
 * The llama.cpp adapter against the real pinned llama-server serving the generated tiny model:
 * prompt tokens on a warm prompt cache, KV usage from `/slots` (the build exports no KV gauge),
 * continuous batching as launched, and embeddings detected and served (`launch.embeddings`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import type { LlamaCppAdapter } from '../../src/engines/llamacpp/adapter.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { tinyModelPath, tinyPool, until } from '../support/harness.js';

const started: EngineUnderTest[] = [];
afterAll(async () => {
  await Promise.all(started.map((e) => e.stop()));
});

async function engine(
  launch: NonNullable<RawPool['launch']> = {},
): Promise<EngineUnderTest & { llama: LlamaCppAdapter }> {
  const base = tinyPool(`real-${started.length}`, await tinyModelPath());
  const e = await startEngine({ ...base, launch: { ...base.launch, ...launch } });
  started.push(e);
  await until(
    async () => (await e.adapter.probe(AbortSignal.timeout(2_000)).catch(() => undefined))?.ready === true,
    60_000,
  );
  return Object.assign(e, { llama: e.adapter as LlamaCppAdapter });
}

const request = (o: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: 'Once upon a time there was a tiny model',
  maxTokens: 8,
  seed: 3,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
  ignoreEos: true,
  ...o,
});

async function run(e: EngineUnderTest, req: GenerateRequest) {
  const events: EngineEvent[] = [];
  for await (const ev of e.adapter.generate(req, AbortSignal.timeout(30_000))) events.push(ev);
  const done = events.find((ev) => ev.kind === 'done');
  if (done?.kind !== 'done') throw new Error('no done event');
  return done;
}

type Slot = { n_ctx: number; n_prompt_tokens?: number };
const slotsOf = async (e: EngineUnderTest) => (await (await fetch(`${e.baseUrl}/slots`)).json()) as Slot[];

describe('llama.cpp on the real llama-server', () => {
  it('a warm session counts its whole prompt as tokens in; only the uncached part as prefill', async () => {
    const e = await engine();
    const prompt = request().prompt;
    const tokens = await e.adapter.countTokens(prompt, AbortSignal.timeout(5_000));
    const cold = await run(e, request());
    const warm = await run(e, request());
    expect(cold.tokensIn).toBe(tokens);
    // The second request found the prompt in the slot's cache: llama-server computed one token.
    expect(warm.tokensIn).toBe(tokens);
    expect(warm.tokensInUncached).toBeLessThan(tokens);
    expect(warm.tokensInUncached).toBeGreaterThan(0);
  });

  it('KV usage comes from the slots: the tokens they hold over their cells', async () => {
    const e = await engine({ parallel: 2 });
    await run(e, request());
    const slots = await slotsOf(e);
    const held = slots.reduce((n, s) => n + (s.n_prompt_tokens ?? 0), 0);
    expect(held).toBeGreaterThan(0);
    const usage = await e.llama.kvUsage(AbortSignal.timeout(5_000));
    expect(usage).toBeCloseTo(held / slots.reduce((n, s) => n + s.n_ctx, 0), 10);
    // The pinned build's metrics carry no KV gauge to read instead.
    expect(await e.adapter.scrapeMetrics(AbortSignal.timeout(5_000))).not.toContain('kv_cache');
  });

  it('under --kv-unified every slot reports the whole cache: usage is over one slot’s cells', async () => {
    const e = await engine({ parallel: 2, extra_args: ['--kv-unified'] });
    await run(e, request());
    const slots = await slotsOf(e);
    expect(new Set(slots.map((s) => s.n_ctx)).size).toBe(1);
    const held = slots.reduce((n, s) => n + (s.n_prompt_tokens ?? 0), 0);
    expect(await e.llama.kvUsage(AbortSignal.timeout(5_000))).toBeCloseTo(held / (slots[0]?.n_ctx ?? 0), 10);
  });

  it('continuous batching is reported as the pool launched the engine', async () => {
    const on = await engine({ cont_batching: true });
    const off = await engine({ cont_batching: false });
    expect((await on.adapter.properties(AbortSignal.timeout(5_000))).features.continuousBatching).toBe(true);
    expect((await off.adapter.properties(AbortSignal.timeout(5_000))).features.continuousBatching).toBe(
      false,
    );
  });

  it('embeddings: detected on the engine; with a pooling type served, one unit vector per input', async () => {
    const plain = await engine();
    const pooled = await engine({ embeddings: { pooling: 'mean' } });
    // --embeddings with the model's own pooling: the tiny model declares none.
    const unpooled = await engine({ embeddings: true });
    expect((await plain.adapter.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(false);
    expect((await unpooled.adapter.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(false);
    expect((await pooled.adapter.properties(AbortSignal.timeout(5_000))).features.embeddings).toBe(true);
    const r = await pooled.llama.embed(['hello', 'world', 'hello'], AbortSignal.timeout(10_000));
    expect(r.vectors).toHaveLength(3);
    expect(r.vectors[0]).toHaveLength(64); // the tiny model's n_embd
    expect(Math.hypot(...(r.vectors[0] ?? []))).toBeCloseTo(1, 5);
    expect(r.vectors[0]).toEqual(r.vectors[2]);
    expect(r.vectors[0]).not.toEqual(r.vectors[1]);
    const perInput = await pooled.adapter.countTokens('hello', AbortSignal.timeout(5_000));
    expect(r.tokensIn).toBeGreaterThanOrEqual(3 * perInput);
    // The same server still completes (the pool's self-test decodes through it).
    expect((await run(pooled, request())).tokensOut).toBe(8);
  });
});
