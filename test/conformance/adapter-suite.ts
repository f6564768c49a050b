/**
 * The shared adapter conformance suite (SPEC §7), as a function: each engine's test file calls
 * `adapterConformance` with how to start its engine (the real llama-server, or the simulator in
 * the engine's dialect at a stated release) and what that engine is expected to say about itself.
 * Health from start to ready, properties and detected features, streaming with token counts and
 * final usage, determinism, cancel freeing the slot, ctx overflow, metrics re-labelling,
 * simulated faults mapped to spec codes, and the engine dying mid-stream. Nothing in here knows
 * which engine it runs against: what differs is in `AdapterConformanceOptions`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import type {
  EngineEvent,
  EngineFeatures,
  EngineHealth,
  GenerateRequest,
} from '../../src/engines/adapter.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { relabelInto, renderFamilies, type Family } from '../../src/util/prom-text.js';
import { setFaults, startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { sleep, until } from '../support/harness.js';

/** How the engine behaves while its model loads, as its health probe sees it. */
export type LoadingHealth =
  /** It listens at once and says it is loading (llama-server's 503, Triton's not-ready). */
  | 'answers-loading'
  /** It listens only once loaded: until then the probe finds nothing there (vLLM, TGI). */
  | 'refuses-connections'
  /** Loading is too quick to observe (the tiny model on the real llama-server). */
  | 'not-observed';

export interface AdapterConformanceOptions {
  /** The describe block's title, e.g. "vLLM 0.6.1.post2 (simulated)". */
  readonly title: string;
  /** The pool one engine process is started from (two slots; the engine loads for a while). */
  pool(): Promise<RawPool> | RawPool;
  readonly loadingHealth: LoadingHealth;
  /** What `properties()` must report besides slots and ctx. */
  readonly props: {
    /** The version it reports: exact, a pattern, or found out at run time (the real binary's). */
    readonly engineVersion: string | RegExp | (() => Promise<string>);
    readonly trtllmVersion?: string;
    readonly features: EngineFeatures;
  };
  /** A metric family the engine's own `/metrics` exposes under its own name. */
  readonly nativeMetric: string;
  /**
   * Simulator faults and the spec codes they must map to; absent for a real engine. A fault the
   * engine cannot show (vLLM and TGI have no "loading" answer once they listen) is `refused`:
   * the simulator must refuse to inject it.
   */
  readonly faults?: {
    readonly oom: { readonly code: string; readonly message?: RegExp };
    readonly refuse: { readonly code: string };
    readonly loading: { readonly code: string } | 'refused';
  };
}

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

/** Registers the conformance suite for one engine (see the module comment). */
export function adapterConformance(o: AdapterConformanceOptions): void {
  describe(`adapter conformance: ${o.title}`, () => {
    let e: EngineUnderTest;
    const seen: EngineHealth[] = [];

    beforeAll(async () => {
      e = await startEngine(await o.pool());
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

    it('health: not ready before the model is loaded, then ready; loading as the engine shows it', () => {
      expect(seen.at(-1)).toMatchObject({ live: true, ready: true, loading: false });
      const before = seen.slice(0, -1);
      for (const h of before) expect(h.ready).toBe(false);
      if (o.loadingHealth === 'answers-loading') expect(before.some((h) => h.live && h.loading)).toBe(true);
      if (o.loadingHealth === 'refuses-connections') {
        expect(before.length).toBeGreaterThan(0);
        for (const h of before) expect(h).toMatchObject({ live: false, loading: false });
      }
    });

    it('properties: slots, ctx, model, engine_version, model digest and detected features', async () => {
      const props = await e.adapter.properties(AbortSignal.timeout(5_000));
      expect(props.slotsTotal).toBe(2);
      expect(props.slotsFree).toBe(2);
      expect(props.ctx).toBe(e.pool.ctx);
      expect(props.model).not.toBe('');
      expect(props.modelDigest).toMatch(/^(sha256|sim):/);
      const want = o.props.engineVersion;
      const version = typeof want === 'function' ? await want() : want;
      if (typeof version === 'string') expect(props.engineVersion).toBe(version);
      else expect(props.engineVersion).toMatch(version);
      if (o.props.trtllmVersion !== undefined) expect(props.trtllmVersion).toBe(o.props.trtllmVersion);
      expect(props.features).toEqual(o.props.features);
      expect(e.adapter.embed !== undefined || !o.props.features.embeddings).toBe(true);
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
      expect(err.engine).toBe(e.engine);
    });

    it('metrics: native names, re-labelled with engine, engine_version, pool_id, replica_id, model_id', async () => {
      const text = await e.adapter.scrapeMetrics(AbortSignal.timeout(5_000));
      expect(text).toContain(o.nativeMetric);
      const families = new Map<string, Family>();
      const labels = {
        engine: e.engine,
        engine_version: 'v-test',
        pool_id: e.pool.id,
        replica_id: `${e.pool.id}-r0`,
        model_id: 'm',
      };
      relabelInto(families, text, labels);
      const samples = renderFamilies(families)
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'));
      expect(samples.length).toBeGreaterThan(0);
      for (const s of samples)
        for (const [k, v] of Object.entries(labels)) expect(s).toContain(`${k}="${v}"`);
      expect(samples.some((s) => s.startsWith(o.nativeMetric))).toBe(true);
    });

    it.runIf(o.props.features.embeddings)(
      'embeddings: one unit vector per input, in order, deterministic',
      async () => {
        const embed = e.adapter.embed?.bind(e.adapter);
        if (!embed) throw new Error('an adapter that reports embeddings must embed');
        const a = await embed(['alpha', 'beta'], AbortSignal.timeout(5_000));
        const b = await embed(['beta'], AbortSignal.timeout(5_000));
        expect(a.vectors).toHaveLength(2);
        expect(a.vectors[1]).toEqual(b.vectors[0]);
        expect(Math.hypot(...(a.vectors[0] ?? []))).toBeCloseTo(1, 6);
        expect(a.tokensIn).toBeGreaterThan(0);
      },
    );

    const faults = o.faults;
    it.runIf(faults !== undefined)('engine failures map to spec codes: OOM, refusal, loading', async () => {
      if (faults === undefined) return;
      await setFaults(e, { oom_after_tokens: 2 });
      const oom = await failure(collect(e, request()));
      expect(oom.code).toBe(faults.oom.code);
      if (faults.oom.message) expect(oom.message).toMatch(faults.oom.message);
      await setFaults(e, { refuse: true });
      expect((await failure(collect(e, request()))).code).toBe(faults.refuse.code);
      await setFaults(e, {});
      if (faults.loading === 'refused') {
        const res = await fetch(`${e.baseUrl}/__sim/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ loading_ms: 60_000 }),
        });
        expect(res.status).toBe(400);
      } else {
        await setFaults(e, { loading_ms: 60_000 });
        expect((await failure(collect(e, request()))).code).toBe(faults.loading.code);
        expect(await e.adapter.probe(AbortSignal.timeout(2_000))).toMatchObject({
          live: true,
          ready: false,
          loading: true,
        });
        await setFaults(e, {});
      }
      expect((await e.adapter.probe(AbortSignal.timeout(2_000))).ready).toBe(true);
      expect(tokenCount(await collect(e, request({ maxTokens: 4 })))).toBe(4);
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
}
