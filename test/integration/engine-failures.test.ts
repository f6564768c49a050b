/**
 * Engine crash loops (SPEC §5): classified failures, restarts with backoff, the circuit breaker
 * opening (visible in health, admission and metrics), capacity re-estimation after GPU OOM, and
 * recovery once the cause is gone.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

let h: Harness;
let crashFile: string;

beforeAll(async () => {
  crashFile = join(await mkdtemp(join(tmpdir(), 'llorch-crash-')), 'crash');
  await writeFile(crashFile, 'crash');
  h = await startHarness(
    {
      auth: { keys: TEST_KEYS },
      pools: [
        simPool('loop', 'vllm', {
          launch: {
            worker: 'sim',
            parallel: 4,
            health_interval_ms: 100,
            extra_args: [
              '--fault-crash-file',
              crashFile,
              '--fault-crash-message',
              'CUDA error: out of memory',
            ],
            restart: {
              backoff_base_ms: 50,
              backoff_max_ms: 100,
              max_failures: 3,
              window_ms: 30_000,
              cooldown_ms: 1_500,
            },
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

const health = async () =>
  (await call(h.url, 'GET', '/v1/pools/loop/health', { key: KEYS.ops })).json as {
    ready: boolean;
    metrics: { slots_total: number };
    replicas: { state: string; cause?: string }[];
  };

describe('crash loop → backoff → breaker → recovery', () => {
  it('failures are classified, restarts back off, and the breaker opens', async () => {
    await until(async () => /circuit breaker open/.test((await health()).replicas[0]?.cause ?? ''), 90_000);
    const cause = (await health()).replicas[0]?.cause ?? '';
    expect(cause).toMatch(/after 3 failures/);
    expect(cause).toMatch(/vram_oom/);
    expect(cause).toContain('CUDA error: out of memory');
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/pool_breaker_open\{engine="vllm",pool_id="loop",replica_id="loop-r0"\} 1/);
    expect(metrics).toMatch(/engine_failures_total\{engine="vllm",pool_id="loop",reason="vram_oom"\} [3-9]/);
    expect(metrics).toMatch(/pool_restarts_total\{engine="vllm",pool_id="loop",replica_id="loop-r0"\} [3-9]/);
    // An open breaker makes the pool unavailable, not "still starting".
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('loop', { engine: 'vllm' }),
    });
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
  });

  it('after the cause is gone, the half-open attempt succeeds with capacity re-estimated after GPU OOM', async () => {
    await rm(crashFile);
    await until(async () => (await health()).ready, 90_000);
    // Three GPU OOMs halved the slots: 4 → 2 → 1 → 1.
    expect((await health()).metrics.slots_total).toBe(1);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/pool_breaker_open\{engine="vllm",pool_id="loop",replica_id="loop-r0"\} 0/);
    const t = task('loop', { engine: 'vllm', max_tokens: 3 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
  });
});
