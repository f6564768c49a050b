/**
 * The shared conformance suite against the simulator's TGI dialect at a current release and at
 * v1.4.5 (whose streams do not carry `input_length`: prompt tokens come from `/tokenize`), then
 * what only TGI has: a release without `/tokenize` is refused, and end-of-sequence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../src/engines/adapter.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, until } from '../support/harness.js';
import { adapterConformance } from './adapter-suite.js';

for (const version of ['sim-tgi-1', '3.3.6', '2.2.0', '1.4.5']) {
  adapterConformance({
    title: `TGI ${version} (simulated)`,
    pool: () =>
      simPool(`conf-tgi-${version.replace(/\W/g, '-')}`, 'tgi', {
        sim: { tokens_per_s: 400, load_ms: 400, engine_version: version },
      }),
    // The launcher starts the router only once the shards are loaded.
    loadingHealth: 'refuses-connections',
    props: {
      engineVersion: version,
      features: { continuousBatching: true, interruptibleDecode: false, embeddings: false },
    },
    nativeMetric: 'tgi_queue_size',
    faults: {
      oom: { code: 'WORKER_RESET', message: /out of memory/i },
      refuse: { code: 'REPLICA_EXHAUSTED' },
      loading: 'refused',
    },
  });
}

describe('TGI releases and end-of-sequence', () => {
  const started: EngineUnderTest[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((e) => e.stop()));
  });

  async function start(id: string, sim: Record<string, unknown>, extraArgs: string[] = []) {
    const e = await startEngine(
      simPool(id, 'tgi', { launch: { worker: 'sim', parallel: 2, extra_args: extraArgs, sim } }),
    );
    started.push(e);
    await until(async () => (await e.adapter.probe(AbortSignal.timeout(2_000))).ready, 90_000);
    return e;
  }

  it('a release before v1.4.0 (no /tokenize) is refused with the reason', async () => {
    const e = await start('tgi-old', { engine_version: '1.3.4' });
    await expect(e.adapter.properties(AbortSignal.timeout(5_000))).rejects.toThrow(/older than v1\.4\.0/);
  });

  it('end-of-sequence: the special token counts, no text, stopReason eos', async () => {
    const e = await start('tgi-eos', {}, ['--eos-probability', '0.2']);
    const evs: EngineEvent[] = [];
    for await (const ev of e.adapter.generate(
      {
        prompt: 'Once upon a time',
        maxTokens: 200,
        seed: 11,
        determinism: 'strict',
        samplerProfileVersion: 'v1',
        cachePrompt: false,
      },
      AbortSignal.timeout(30_000),
    ))
      evs.push(ev);
    const done = evs.at(-1);
    expect(done).toMatchObject({ kind: 'done', stopReason: 'eos' });
    const tokens = evs.filter((ev) => ev.kind === 'tokens');
    expect(done?.kind === 'done' && done.tokensOut).toBe(tokens.length);
    expect(tokens.at(-1)).toMatchObject({ text: '' });
    expect(tokens.length).toBeLessThan(200);
  });
});
