/**
 * Engine credentials on pool-managerd nodes (SPEC §11): which engines get a key per launch, the
 * guard in front of Triton (which has no API key): it refuses requests without the key, streams
 * through with it, and a caller that goes away ends the engine request (the slot is freed); and
 * the check that an engine really enforces its key before it is advertised.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest } from '../../src/engines/adapter.js';
import { TritonAdapter } from '../../src/engines/triton/adapter.js';
import { enforcesKey, keyBeyondLoopback, securePool } from '../../src/nodes/engine-credentials.js';
import { startEngineGuard, type EngineGuard } from '../../src/nodes/engine-guard.js';
import { resolvePool, startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, until } from '../support/harness.js';

const KEY = 'guard-key-0123456789';
const req: GenerateRequest = {
  prompt: 'hello',
  maxTokens: 400,
  seed: 1,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: false,
  ignoreEos: true,
};

describe('engine keys per launch (securePool)', () => {
  it('keyed engines get a fresh key each launch unless configured; the pool keeps its interface', () => {
    const vllm = resolvePool({ ...simPool('v', 'vllm'), launch: { worker: 'sim', host: '10.1.2.3' } });
    const a = securePool(vllm);
    const b = securePool(vllm);
    expect(a.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.key).not.toBe(a.key);
    expect(a.pool.launch).toMatchObject({ apiKey: a.key, host: '10.1.2.3' });
    expect(a.guardHost).toBeUndefined();
    const configured = resolvePool({ ...simPool('v', 'tgi'), launch: { worker: 'sim', api_key: 'mine' } });
    expect(securePool(configured)).toMatchObject({ key: 'mine', pool: { launch: { apiKey: 'mine' } } });
  });

  it('Triton beyond loopback moves to 127.0.0.1 behind a guard on the configured interface; on loopback it needs none', () => {
    const wide = resolvePool({ ...simPool('t', 'triton'), launch: { worker: 'sim' } });
    expect(securePool(wide)).toMatchObject({ key: undefined, guardHost: undefined });
    const s = securePool({ ...wide, launch: { ...wide.launch, host: '0.0.0.0' } });
    expect(s.guardHost).toBe('0.0.0.0');
    expect(s.pool.launch.host).toBe('127.0.0.1');
    expect(s.pool.launch.apiKey).toBeUndefined(); // Triton itself is never told a key
    expect(s.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('a single-host orchestrator keys its engines only beyond loopback', () => {
    const local = resolvePool(simPool('l', 'llamacpp'));
    expect(keyBeyondLoopback(local)).toBe(local);
    const wide = { ...local, launch: { ...local.launch, host: '0.0.0.0' } };
    expect(keyBeyondLoopback(wide).launch.apiKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('the guard in front of an engine without API keys', () => {
  let triton: EngineUnderTest;
  let guard: EngineGuard;
  let metricsGuard: EngineGuard;
  const metricsUrl = () => (triton.adapter as TritonAdapter).metricsUrl;

  beforeAll(async () => {
    triton = await startEngine(simPool('guarded', 'triton', { sim: { tokens_per_s: 200 } }));
    await until(async () => {
      try {
        return (await triton.adapter.probe(AbortSignal.timeout(2_000))).ready;
      } catch {
        return false;
      }
    }, 30_000);
    guard = await startEngineGuard({ host: '127.0.0.1', target: () => triton.baseUrl, key: () => KEY });
    metricsGuard = await startEngineGuard({ host: '127.0.0.1', target: metricsUrl, key: () => KEY });
  });
  afterAll(async () => {
    await guard?.close();
    await metricsGuard?.close();
    await triton?.stop();
  });

  it('refuses requests without the key or with a wrong one (401)', async () => {
    expect((await fetch(`${guard.url}/v2/health/ready`)).status).toBe(401);
    const wrong = await fetch(`${guard.url}/v2`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: expect.stringMatching(/credential/) });
    expect((await fetch(`${metricsGuard.url}/metrics`)).status).toBe(401);
  });

  it('with the key the adapter works through it, streams included; a cancelled stream frees the engine slot', async () => {
    const adapter = new TritonAdapter({ baseUrl: guard.url, metricsUrl: metricsGuard.url, apiKey: KEY });
    try {
      expect((await adapter.probe(AbortSignal.timeout(5_000))).ready).toBe(true);
      expect((await adapter.properties(AbortSignal.timeout(5_000))).engineVersion).toBeTruthy();
      expect(await adapter.scrapeMetrics?.(AbortSignal.timeout(5_000))).toMatch(/nv_/);
      const abort = new AbortController();
      let tokens = 0;
      for await (const ev of adapter.generate(req, abort.signal)) {
        if (ev.kind === 'tokens') tokens += ev.count;
        if (tokens >= 3) break; // leaving the loop aborts the request
      }
      abort.abort();
      const state = async () =>
        (await (await fetch(`${triton.baseUrl}/__sim/state`)).json()) as { running: number };
      await until(async () => (await state()).running === 0, 90_000);
      expect(tokens).toBeGreaterThanOrEqual(3);
    } finally {
      await adapter.close();
    }
  });

  it('answers 503 while no engine runs behind it', async () => {
    const idle = await startEngineGuard({ host: '127.0.0.1', target: () => undefined, key: () => KEY });
    try {
      const res = await fetch(`${idle.url}/v2`, { headers: { authorization: `Bearer ${KEY}` } });
      expect(res.status).toBe(503);
    } finally {
      await idle.close();
    }
  });
});

describe('an engine is advertised only once it enforces its key', () => {
  it('a keyed engine refuses without the key; an engine that ignores the key is told apart', async () => {
    const keyed = await startEngine(simPool('k', 'vllm', { launch: { worker: 'sim', api_key: KEY } }));
    const open = await startEngine(simPool('o', 'tgi'));
    try {
      for (const e of [keyed, open])
        await until(async () => {
          try {
            return (await e.adapter.probe(AbortSignal.timeout(2_000))).ready;
          } catch {
            return false;
          }
        }, 30_000);
      expect(await enforcesKey('vllm', keyed.baseUrl)).toBe(true);
      expect(await enforcesKey('tgi', open.baseUrl)).toBe(false);
      expect(await enforcesKey('triton', open.baseUrl)).toBeUndefined();
    } finally {
      await Promise.all([keyed.stop(), open.stop()]);
    }
  });
});
