/**
 * vLLM and TGI do not listen until their model is loaded: the pool supervisor's preloading reads
 * the refused connections as "still loading" — no restart, no failure — until the engine answers,
 * and only `launch.startup_timeout_ms` ends the wait (SPEC §5, ORCH-3002).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, TEST_KEYS, call, simPool, startHarness, until, type Harness } from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness(
    {
      auth: { keys: TEST_KEYS },
      pools: [
        simPool('late-vllm', 'vllm', { sim: { load_ms: 1_500 } }),
        simPool('late-tgi', 'tgi', { sim: { load_ms: 1_500 } }),
        // Loads for longer than the pool waits: the preload fails on its deadline.
        simPool('never-vllm', 'vllm', {
          sim: { load_ms: 600_000 },
          launch: {
            worker: 'sim',
            parallel: 2,
            startup_timeout_ms: 1_000,
            sim: { load_ms: 600_000 },
            restart: { backoff_base_ms: 60_000, backoff_max_ms: 60_000 },
          },
        }),
      ],
    },
    { waitReady: false },
  );
});
afterAll(async () => {
  await h.close();
});

const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as {
    ready: boolean;
    replicas: { state: string; cause?: string }[];
  };

describe('preloading an engine that listens only once loaded', () => {
  it.each(['late-vllm', 'late-tgi'])(
    '%s: refused connections are "still loading"; ready without a restart',
    async (id) => {
      await until(async () => (await health(id)).ready, 90_000);
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      const sample = (name: string, ...labels: string[]) =>
        new RegExp(`^${name}\\{${labels.map((l) => `(?=[^}]*${l})`).join('')}[^}]*\\} [1-9]`, 'm');
      expect(metrics).toMatch(sample('pool_preload_total', `pool_id="${id}"`, 'outcome="ready"'));
      expect(metrics).not.toMatch(sample('pool_restarts_total', `pool_id="${id}"`));
    },
  );

  it('an engine still not listening at startup_timeout_ms fails its preload with that cause', async () => {
    await until(
      async () => /not healthy within 1000 ms/.test((await health('never-vllm')).replicas[0]?.cause ?? ''),
      30_000,
    );
    expect((await health('never-vllm')).ready).toBe(false);
  });
});
