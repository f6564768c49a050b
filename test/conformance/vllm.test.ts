/**
 * The shared conformance suite against the simulator's vLLM dialect, at a current release and at
 * one before v0.7.0 (older error bodies, engine failures that cut the stream, prefix caching off
 * by default); then what only vLLM has: the served task decides embeddings, prefix caching decides
 * interruptible decode, and a seeded end-of-sequence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, until } from '../support/harness.js';
import { adapterConformance } from './adapter-suite.js';

const faults = {
  // A dead engine core (current: the EngineDeadError event; before v0.7.0: the stream is cut).
  oom: { code: 'WORKER_RESET' },
  // vLLM's only refusal: the elastic-EP scaling middleware's 503.
  refuse: { code: 'REPLICA_EXHAUSTED' },
  // vLLM does not listen while it loads, so a listening vLLM has no "loading" answer.
  loading: 'refused',
} as const;

for (const version of ['sim-vllm-1', '0.15.1', '0.6.1.post2']) {
  adapterConformance({
    title: `vLLM ${version} (simulated)`,
    pool: () =>
      simPool(`conf-vllm-${version.replace(/\W/g, '-')}`, 'vllm', {
        sim: { tokens_per_s: 400, load_ms: 400, engine_version: version },
      }),
    loadingHealth: 'refuses-connections',
    props: {
      engineVersion: version,
      // A generating model: no embeddings. Prefix caching is on by default from v0.8.0.
      features: {
        continuousBatching: true,
        interruptibleDecode: version !== '0.6.1.post2',
        embeddings: false,
        completions: true,
      },
    },
    nativeMetric: 'vllm:num_requests_running',
    faults,
  });
}

describe('vLLM capabilities are detected from the engine', () => {
  const started: EngineUnderTest[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((e) => e.stop()));
  });

  async function start(id: string, extraArgs: string[]): Promise<EngineUnderTest> {
    const e = await startEngine(
      simPool(id, 'vllm', { launch: { worker: 'sim', parallel: 2, extra_args: extraArgs } }),
    );
    started.push(e);
    await until(async () => (await e.adapter.probe(AbortSignal.timeout(2_000))).ready, 90_000);
    return e;
  }

  it('a pooling model (`--task embed`) reports and serves embeddings, and refuses completions', async () => {
    const e = await start('vllm-embed', ['--task', 'embed']);
    const props = await e.adapter.properties(AbortSignal.timeout(5_000));
    expect(props.features.embeddings).toBe(true);
    expect(props.features.completions).toBe(false);
    const embed = e.adapter.embed?.bind(e.adapter);
    if (!embed) throw new Error('the vLLM adapter must embed');
    const a = await embed(['alpha', 'beta'], AbortSignal.timeout(5_000));
    const b = await embed(['beta'], AbortSignal.timeout(5_000));
    expect(a.vectors).toHaveLength(2);
    expect(a.vectors[1]).toEqual(b.vectors[0]);
    expect(Math.hypot(...(a.vectors[0] ?? []))).toBeCloseTo(1, 6);
    const gen = e.adapter.generate(
      {
        prompt: 'x',
        maxTokens: 2,
        seed: 1,
        determinism: 'strict',
        samplerProfileVersion: 'v1',
        cachePrompt: false,
      },
      AbortSignal.timeout(5_000),
    );
    await expect(gen[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('prefix caching off (`--no-enable-prefix-caching`): decode is not claimed interruptible', async () => {
    const e = await start('vllm-noapc', ['--no-enable-prefix-caching']);
    expect((await e.adapter.properties(AbortSignal.timeout(5_000))).features).toEqual({
      continuousBatching: true,
      interruptibleDecode: false,
      embeddings: false,
      completions: true,
    });
  });

  it('a seeded end-of-sequence ends the stream early with stopReason eos; ignore_eos runs to max_tokens', async () => {
    const e = await start('vllm-eos', ['--eos-probability', '0.2']);
    const run = async (ignoreEos: boolean) => {
      const evs: EngineEvent[] = [];
      for await (const ev of e.adapter.generate(
        {
          prompt: 'Once upon a time',
          maxTokens: 200,
          seed: 11,
          determinism: 'strict',
          samplerProfileVersion: 'v1',
          cachePrompt: false,
          ignoreEos,
        },
        AbortSignal.timeout(30_000),
      ))
        evs.push(ev);
      return evs.at(-1);
    };
    const eos = await run(false);
    expect(eos).toMatchObject({ kind: 'done', stopReason: 'eos' });
    expect(eos?.kind === 'done' && eos.tokensOut < 200).toBe(true);
    expect(await run(true)).toMatchObject({ kind: 'done', stopReason: 'length', tokensOut: 200 });
  });
});
