/**
 * GPU hosts (SPEC §5, ORCH-1101) with a stand-in nvidia-smi: headroom refusals with a clear
 * cause, telemetry in pool health and metrics, and the prod profile refusing a host whose GPUs
 * are not usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/resolve-config.js';
import { startOrchestrator } from '../../src/main.js';
import { createLogger } from '../../src/util/logger.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  type Harness,
} from '../support/harness.js';

const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;
process.env['FAKE_NVIDIA_SMI_FILE'] = new URL(
  '../fixtures/nvidia-smi/two-gpus.csv',
  import.meta.url,
).pathname;

let h: Harness;
beforeAll(async () => {
  const model = await tinyModelPath();
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
    pools: [
      { ...tinyPool('gpu0', model), devices: [0] },
      { ...tinyPool('full', model), devices: [1], replicas: 5 },
      { ...tinyPool('ghost', model), devices: [3] },
    ],
  });
});
afterAll(async () => {
  await h.close();
});

type Health = {
  ready: boolean;
  last_error: string | null;
  replicas: { state: string; cause?: string }[];
  telemetry?: { devices: Record<string, unknown>[] };
};
const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;

describe('headroom (SPEC §5)', () => {
  it('a pool that does not fit the free VRAM is refused with the numbers, and no engine starts', async () => {
    const full = await health('full');
    expect(full.ready).toBe(false);
    expect(full.replicas.every((r) => r.state === 'unready')).toBe(true);
    expect(full.last_error).toMatch(
      /^headroom: pool 'full' needs [\d.]+ GiB on GPU 1 \(NVIDIA GeForce RTX 3090\) for 5 replica\(s\)/,
    );
    expect(full.last_error).toContain('1.05 GiB free');
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('full') });
    expect(r.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
    expect((await health('ghost')).last_error).toMatch(/uses GPU 3, which this host does not have/);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/engine_failures_total\{engine="llamacpp",pool_id="full",reason="headroom"\} 1/);
  });

  it('a pool that fits serves, with its devices telemetry in health and metrics', async () => {
    const t = task('gpu0', { max_tokens: 3 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    expect((await readStream(h.url, t.task_id, { key: KEYS.alice })).events.at(-1)?.event).toBe('end');
    const g = await health('gpu0');
    expect(g.telemetry?.devices).toEqual([
      expect.objectContaining({
        index: 0,
        name: 'NVIDIA GeForce RTX 4090',
        utilization: 0.37,
        temperature_c: 45,
        ecc_uncorrected: 0,
      }),
    ]);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(
      /gpu_utilization\{engine="llamacpp",engine_version="[^"]+",pool_id="gpu0",replica_id="gpu0-r0",device="0"\} 0\.37/,
    );
    expect(metrics).toMatch(
      new RegExp(`vram_used_bytes\\{[^}]*pool_id="gpu0"[^}]*device="0"\\} ${1234 * 2 ** 20}`),
    );
  });
});

describe('NVIDIA-only (ORCH-1101)', () => {
  it('prod refuses to start GPU pools on a host where nvidia-smi finds no usable GPU', async () => {
    process.env['FAKE_NVIDIA_SMI_FAIL'] = '1';
    try {
      const { config } = validateConfig({
        profile: 'prod',
        listen: { host: '127.0.0.1', port: 0 },
        engines: { nvidia_smi_path: STAND_IN },
        pools: [{ ...tinyPool('p', await tinyModelPath()), devices: [0] }],
      });
      const err = await startOrchestrator(config, {
        logger: createLogger({ level: 'silent' }),
        processMetrics: false,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).toMatch(
        /need NVIDIA GPUs but none is usable on this host \(nvidia-smi failed: .*driver.*\).*ORCH-1101/s,
      );
    } finally {
      delete process.env['FAKE_NVIDIA_SMI_FAIL'];
    }
  });

  it('prod refuses a CPU pool at config validation', () => {
    expect(() =>
      validateConfig({
        profile: 'prod',
        pools: [
          { id: 'c', engine: 'llamacpp', model: { id: 'c', path: '/m.gguf' }, ctx: 256, devices: 'cpu' },
        ],
      }),
    ).toThrow(/ORCH-1101/);
  });
});
