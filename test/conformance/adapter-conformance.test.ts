/**
 * The shared adapter conformance suite (SPEC §7): every engine adapter must pass it against its
 * engine — the real llama-server for llama.cpp, the engine simulator in their dialect for vLLM,
 * TGI and Triton. Health transitions, properties and version capture, streaming with token
 * counts and final usage, cancel freeing the slot, ctx overflow, engine failures mapped to spec
 * codes, metrics re-labelling, embeddings where the engine has them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, type Engine } from '../../src/domain/types.js';
import type { EngineEvent, EngineHealth, GenerateRequest } from '../../src/engines/adapter.js';
import { llamaServerVersion } from '../../src/engines/llamacpp/provision.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { relabelInto, renderFamilies, type Family } from '../../src/util/prom-text.js';
import {
  conformancePool,
  setFaults,
  startEngine,
  type EngineUnderTest,
} from '../support/engine-under-test.js';
import { requireLlamaServer, sleep, until } from '../support/harness.js';

/** A metric each engine's native `/metrics` exposes (its own names, SPEC §7). */
const NATIVE_METRIC: Record<Engine, string> = {
  llamacpp: 'llamacpp:prompt_tokens_total',
  vllm: 'vllm:num_requests_running',
  tgi: 'tgi_queue_size',
  triton: 'nv_inference_request_success',
};

const request = (o: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: 'The quick brown fox',
  maxTokens: 16,
  seed: 42,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: false,
  ignoreEos: true,
  ...o,
});

async function collect(e: EngineUnderTest, req: GenerateRequest, signal = AbortSignal.timeout(30_000)) {
  const events: EngineEvent[] = [];
  for await (const ev of e.adapter.generate(req, signal)) events.push(ev);
  return events;
}

async function failure(p: Promise<unknown>): Promise<OrchError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const tokenCount = (events: readonly EngineEvent[]) =>
  events.reduce((n, ev) => n + (ev.kind === 'tokens' ? ev.count : 0), 0);

describe.each(ENGINES)('adapter conformance: %s', (engine) => {
  let e: EngineUnderTest;
  const seen: EngineHealth[] = [];

  beforeAll(async () => {
    e = await startEngine(await conformancePool(engine, { load_ms: 400 }));
    // Health from the moment the process starts until it is ready.
    await until(async () => {
      const h = await e.adapter.probe(AbortSignal.timeout(2_000));
      seen.push(h);
      return h.ready;
    }, 60_000);
  });
  afterAll(async () => {
    await e.stop();
  });

  it('health: not live before it listens, loading while the model loads, then ready', () => {
    expect(seen.at(-1)).toMatchObject({ live: true, ready: true, loading: false });
    for (const h of seen.slice(0, -1)) expect(h.ready).toBe(false);
    // Simulators load for 400 ms; llama-server loads the tiny model too fast to catch reliably.
    if (e.simulated) expect(seen.some((h) => h.live && h.loading)).toBe(true);
  });

  it('properties: slots, ctx, model, engine_version and model digest', async () => {
    const props = await e.adapter.properties(AbortSignal.timeout(5_000));
    expect(props.slotsTotal).toBe(2);
    expect(props.slotsFree).toBe(2);
    expect(props.ctx).toBe(e.pool.ctx);
    expect(props.model).not.toBe('');
    expect(props.modelDigest).toMatch(/^(sha256|sim):/);
    if (engine === 'llamacpp') {
      expect(props.engineVersion).toBe(await llamaServerVersion(await requireLlamaServer()));
    } else if (engine === 'triton') {
      expect(props.trtllmVersion).toBe('sim-triton-1');
      expect(props.engineVersion).toMatch(/^\d+\.\d+\.\d+\+trtllm-sim-triton-1$/);
    } else {
      expect(props.engineVersion).toBe(`sim-${engine}-1`);
    }
    expect(props.features.embeddings).toBe(engine === 'vllm');
  });

  it('streams exactly max_tokens tokens with final usage matching the tokenizer', async () => {
    const req = request({ maxTokens: 24 });
    const events = await collect(e, req);
    const done = events.at(-1);
    expect(done?.kind).toBe('done');
    expect(events.filter((ev) => ev.kind === 'done')).toHaveLength(1);
    expect(tokenCount(events)).toBe(24);
    if (done?.kind !== 'done') throw new Error('no done');
    expect(done.tokensOut).toBe(24);
    expect(done.stopReason).toBe('length');
    expect(done.tokensIn).toBe(await e.adapter.countTokens(req.prompt, AbortSignal.timeout(5_000)));
    for (const ev of events) if (ev.kind === 'tokens') expect(ev.ids.length).toBeLessThanOrEqual(ev.count);
  });

  it('same request, same stream (seeded, sampler profile v1)', async () => {
    const text = (evs: EngineEvent[]) => evs.map((ev) => (ev.kind === 'tokens' ? ev.text : '')).join('');
    const a = await collect(e, request({ seed: 7 }));
    const b = await collect(e, request({ seed: 7 }));
    expect(text(a)).toBe(text(b));
  });

  it('refuses an unknown sampler profile before calling the engine', async () => {
    const err = await failure(collect(e, request({ samplerProfileVersion: 'v0' })));
    expect(err.code).toBe('INVALID_PARAMS');
  });

  it('cancel mid-stream through AbortSignal frees the engine slot', async () => {
    const ac = new AbortController();
    let got = 0;
    const run = (async () => {
      for await (const ev of e.adapter.generate(request({ maxTokens: 1_500 }), ac.signal)) {
        if (ev.kind === 'tokens') got += ev.count;
        if (got >= 3) ac.abort(new Error('client canceled'));
      }
    })();
    await expect(run).rejects.toThrow(/client canceled/);
    await until(async () => {
      const p = await e.adapter.properties(AbortSignal.timeout(5_000));
      return p.slotsFree === p.slotsTotal;
    }, 10_000);
  });

  it('a prompt over the context length → INVALID_PARAMS', async () => {
    const err = await failure(collect(e, request({ prompt: 'x'.repeat(e.pool.ctx + 50), maxTokens: 8 })));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(err.engine).toBe(engine);
  });

  it('metrics: native names, re-labelled with engine, engine_version, pool_id, replica_id, model_id', async () => {
    const text = await e.adapter.scrapeMetrics(AbortSignal.timeout(5_000));
    expect(text).toContain(NATIVE_METRIC[engine]);
    const families = new Map<string, Family>();
    const labels = {
      engine,
      engine_version: 'v-test',
      pool_id: e.pool.id,
      replica_id: `${e.pool.id}-r0`,
      model_id: 'm',
    };
    relabelInto(families, text, labels);
    const out = renderFamilies(families);
    const samples = out.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(0);
    for (const s of samples) {
      for (const [k, v] of Object.entries(labels)) expect(s).toContain(`${k}="${v}"`);
    }
    expect(samples.some((s) => s.startsWith(NATIVE_METRIC[engine]))).toBe(true);
  });

  it.runIf(engine === 'vllm')('embeddings: one unit vector per input, in order, deterministic', async () => {
    const embed = e.adapter.embed?.bind(e.adapter);
    if (!embed) throw new Error('vLLM adapter must embed');
    const a = await embed(['alpha', 'beta'], AbortSignal.timeout(5_000));
    const b = await embed(['beta'], AbortSignal.timeout(5_000));
    expect(a.vectors).toHaveLength(2);
    expect(a.vectors[1]).toEqual(b.vectors[0]);
    expect(Math.hypot(...(a.vectors[0] ?? []))).toBeCloseTo(1, 6);
    expect(a.tokensIn).toBeGreaterThan(0);
  });

  it.runIf(engine !== 'llamacpp')('engine failures map to spec codes: OOM, refusal, loading', async () => {
    await setFaults(e, { oom_after_tokens: 2 });
    const oom = await failure(collect(e, request()));
    expect(oom.code).toBe('WORKER_RESET');
    expect(oom.message).toMatch(/out of memory/i);
    await setFaults(e, { refuse: true });
    expect((await failure(collect(e, request()))).code).toBe('REPLICA_EXHAUSTED');
    await setFaults(e, { loading_ms: 60_000 });
    expect((await failure(collect(e, request()))).code).toBe('POOL_UNREADY');
    expect(await e.adapter.probe(AbortSignal.timeout(2_000))).toMatchObject({
      live: true,
      ready: false,
      loading: true,
    });
    await setFaults(e, {});
    expect((await e.adapter.probe(AbortSignal.timeout(2_000))).ready).toBe(true);
  });

  // Last: the engine goes away.
  it('engine killed mid-stream → WORKER_RESET, then health says gone', async () => {
    let got = 0;
    const err = await failure(
      (async () => {
        for await (const ev of e.adapter.generate(
          request({ maxTokens: 1_500 }),
          AbortSignal.timeout(30_000),
        )) {
          if (ev.kind === 'tokens') got += ev.count;
          if (got >= 2 && e.process.exit === undefined) e.process.kill('SIGKILL');
        }
      })(),
    );
    expect(err.code).toBe('WORKER_RESET');
    await e.process.exited;
    await sleep(20);
    expect(await e.adapter.probe(AbortSignal.timeout(2_000))).toMatchObject({ live: false, ready: false });
  });
});
