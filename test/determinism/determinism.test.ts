/**
 * Determinism suite (SPEC §14, ORCH-3045..3050, OC-TEST-7001..7003). For each engine, one
 * replica set of two single-slot replicas (real llama-server for llama.cpp, simulators for the
 * others); every corpus entry is sent through the public API to each replica and the two token
 * streams are compared byte for byte. Two seeds must differ (the suite can fail), and a replica
 * set that would mix engine versions is refused.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import { ENGINES, type Engine } from '../../src/domain/types.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  until,
  type Harness,
  type StreamEvent,
} from '../support/harness.js';

interface Corpus {
  readonly version: number;
  readonly max_tokens: number;
  readonly entries: readonly { id: string; seed: number; prompt: string }[];
}
const corpus = JSON.parse(readFileSync(new URL('./corpus.json', import.meta.url), 'utf8')) as Corpus;

/** Single-slot replicas, two per set (the determinism profile of SPEC §7). */
async function replicaSet(engine: Engine): Promise<RawPool> {
  const session = { max_turns: 1_000 };
  if (engine === 'llamacpp') {
    const base = tinyPool('det-llamacpp', await tinyModelPath(), { replicas: 2, session });
    return { ...base, launch: { ...base.launch, parallel: 1, cont_batching: false } };
  }
  const base = simPool(`det-${engine}`, engine, { replicas: 2, session, sim: { tokens_per_s: 20_000 } });
  return { ...base, launch: { ...base.launch, parallel: 1 } };
}

/** The bytes of a stream: token ids where the engine reports them, and the text. */
function streamBytes(events: readonly StreamEvent[]): string {
  return JSON.stringify(
    events.filter((e) => e.event === 'token').map((e) => [e.data['i'], e.data['id'], e.data['t']]),
  );
}

async function run(h: Harness, engine: Engine, body: Record<string, unknown>) {
  const t = task(body['model_ref'] as string, { engine, ...body });
  const accepted = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  expect(accepted.status).toBe(202);
  const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
  const end = events.at(-1);
  expect(end?.event).toBe('end');
  return {
    events,
    replica: end?.data['replica_id'] as string,
    version: end?.data['engine_version'] as string,
  };
}

describe.each(ENGINES)('determinism: %s replica set', (engine) => {
  let h: Harness;
  let pool: RawPool;
  const sessions: { id: string; replica: string }[] = [];

  beforeAll(async () => {
    pool = await replicaSet(engine);
    h = await startHarness({ auth: { keys: TEST_KEYS }, pools: [pool] });
    // Pin one session to each replica: two long tasks at once take both single-slot replicas;
    // afterwards each session's affinity sends its tasks back to the same replica.
    const long = { model_ref: pool.id, max_tokens: engine === 'llamacpp' ? 1_500 : 2_000 };
    const warm = await Promise.all(
      ['a', 'b'].map(async (s) => {
        const id = crypto.randomUUID();
        const r = await run(h, engine, { ...long, session_id: id, prompt: `warm ${s}` });
        return { id, replica: r.replica };
      }),
    );
    sessions.push(...warm);
  });
  afterAll(async () => {
    await h.close();
  });

  it('the warm-up pinned one session to each replica', () => {
    expect(new Set(sessions.map((s) => s.replica)).size).toBe(2);
  });

  it(`${corpus.entries.length} corpus entries give byte-identical streams on both replicas`, async () => {
    expect(corpus.entries.length).toBeGreaterThanOrEqual(64);
    const mismatches: string[] = [];
    for (const entry of corpus.entries) {
      const streams: string[] = [];
      const versions = new Set<string>();
      for (const s of sessions) {
        const r = await run(h, engine, {
          model_ref: pool.id,
          session_id: s.id,
          prompt: entry.prompt,
          seed: entry.seed,
          max_tokens: corpus.max_tokens,
        });
        expect(r.replica).toBe(s.replica);
        versions.add(r.version);
        expect(r.events.filter((e) => e.event === 'token').length).toBeGreaterThan(0);
        streams.push(streamBytes(r.events));
      }
      expect(versions.size).toBe(1);
      if (streams[0] !== streams[1]) mismatches.push(entry.id);
    }
    expect(mismatches).toEqual([]);
  });

  it('two different seeds give different streams (the comparison can fail)', async () => {
    const [first] = corpus.entries;
    if (!first) throw new Error('empty corpus');
    const body = { model_ref: pool.id, prompt: first.prompt, max_tokens: corpus.max_tokens };
    const a = await run(h, engine, { ...body, seed: 11 });
    const b = await run(h, engine, { ...body, seed: 12 });
    expect(streamBytes(a.events)).not.toBe(streamBytes(b.events));
  });

  it('capabilities and replica sets report one engine_version and sampler profile v1', async () => {
    const sets = await call(h.url, 'GET', '/v1/replicasets', { key: KEYS.ops });
    const set = (sets.json as { replica_sets: Record<string, unknown>[] }).replica_sets[0];
    expect(set).toMatchObject({ engine, sampler_profile_version: 'v1', replicas_ready: 2 });
  });
});

describe('a replica set never mixes engine versions', () => {
  let h: Harness;
  afterAll(async () => {
    await h.close();
  });

  it('the replica reporting another engine_version is refused with the cause', async () => {
    const pool = simPool('mixed', 'vllm', { replicas: 2, sim: { engine_version: ['0.6.3', '0.6.4'] } });
    h = await startHarness({ auth: { keys: TEST_KEYS }, pools: [pool] });
    await until(
      () =>
        h.running.orchestrator.pools[0]?.supervisor
          .replicas()
          .every((r) => r.state.kind === 'ready' || r.state.kind === 'unready') ?? false,
      30_000,
    );
    const health = await call(h.url, 'GET', '/v1/pools/mixed/health', { key: KEYS.ops });
    const body = health.json as { replicas: { state: string; cause?: string }[]; engine_version: string };
    expect(body.replicas.map((r) => r.state).sort()).toEqual(['ready', 'unready']);
    const refused = body.replicas.find((r) => r.state === 'unready');
    expect(refused?.cause).toMatch(/engine_version '0\.6\.[34]' differs from the replica set's '0\.6\.[34]'/);
    // Work still flows, only to the replica of the set's version.
    const r = await run(h, 'vllm', { model_ref: 'mixed', max_tokens: 4 });
    expect(r.version).toBe(body.engine_version);
  });
});
