/**
 * GPU hosts (SPEC §5, ORCH-1101) with a stand-in nvidia-smi: capacity refusals with a clear
 * cause, telemetry in pool health and metrics (a replica's VRAM is its own engine's), and the
 * prod profile refusing a host whose GPUs are not usable.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  simPool,
  until,
  type Harness,
} from '../support/harness.js';
import { childPids } from '../support/nvidia-smi-stand-in.js';

const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;
process.env['FAKE_NVIDIA_SMI_FILE'] = new URL(
  '../fixtures/nvidia-smi/two-gpus.csv',
  import.meta.url,
).pathname;
const APPS = join(tmpdir(), `llorch-gpu-host-apps-${process.pid}.csv`);
process.env['FAKE_NVIDIA_SMI_APPS_FILE'] = APPS;

let h: Harness;
beforeAll(async () => {
  const model = await tinyModelPath();
  await writeFile(APPS, '');
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
    pools: [
      { ...tinyPool('gpu0', model), devices: [0] },
      { ...tinyPool('full', model), devices: [1], replicas: 5 },
      { ...tinyPool('ghost', model), devices: [3] },
      // vLLM takes half of GPU 1's memory up front: never there while it is nearly full.
      simPool('half', 'vllm', {
        devices: [1],
        launch: {
          worker: 'sim',
          gpu_memory_utilization: 0.5,
          restart: { backoff_base_ms: 200 },
          sim: { plan_gpu: true },
        },
      }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

type Health = {
  ready: boolean;
  last_error: string | null;
  replicas: { replica_id: string; state: string; cause?: string; vram_used_bytes?: number }[];
  telemetry?: { devices: Record<string, unknown>[]; missing_devices: { device: string }[] };
};
const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;

describe('capacity (SPEC §5, ORCH-3003)', () => {
  it('replicas load one at a time while they fit the free VRAM; the rest are refused with the numbers and retried', async () => {
    const full = await health('full');
    // 1.05 GiB free on GPU 1 holds four replicas of 0.25 GiB.
    expect(full.replicas.filter((r) => r.state === 'ready')).toHaveLength(4);
    const refused = full.replicas.filter((r) => r.state === 'unready');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.cause).toMatch(
      /^capacity: replica 'full-r\d' needs 0\.25 GiB on GPU 1 \(NVIDIA GeForce RTX 3090, GPU-7a2b1c3d-[-0-9a-f]+\), 0\.05 GiB free \(24\.00 GiB total, 22\.95 GiB used by other processes, 1\.01 GiB reserved for full-r\d, full-r\d, full-r\d, full-r\d\)/,
    );
    // vLLM's up-front share is counted: half of 24 GiB never fits; memory may free, so it waits.
    const half = await health('half');
    expect(half.ready).toBe(false);
    expect(half.last_error).toMatch(
      /^capacity: replica 'half-r0' needs 12\.00 GiB on GPU 1 .*vLLM gpu_memory_utilization 0\.5/,
    );
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('half', { engine: 'vllm' }),
    });
    expect(r.json).toMatchObject({ code: 'POOL_UNREADY', retriable: true });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(
      /engine_failures_total\{engine="llamacpp",pool_id="full",reason="headroom"\} [1-9]/,
    );
  });

  it('a configured GPU this host does not have makes the pool unready, naming it', async () => {
    const ghost = await health('ghost');
    expect(ghost.last_error).toMatch(
      /^devices: replica 'ghost-r0' of pool 'ghost' is configured on GPU 3, which nvidia-smi does not list on this host \(GPUs: 0 GPU-6f1a0b2c-[-0-9a-f]+, 1 GPU-7a2b1c3d-/,
    );
    expect(ghost.telemetry?.missing_devices).toEqual([{ device: '3' }]);
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('ghost') });
    expect(r.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
  });

  it("a pool that fits serves, with its devices' telemetry in health and metrics, and its engine's own VRAM", async () => {
    const t = task('gpu0', { max_tokens: 3 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    expect((await readStream(h.url, t.task_id, { key: KEYS.alice })).events.at(-1)?.event).toBe('end');
    const g = await health('gpu0');
    expect(g.telemetry?.devices).toEqual([
      expect.objectContaining({
        index: 0,
        uuid: 'GPU-6f1a0b2c-1111-2222-3333-444455556666',
        pci_bus_id: '00000000:01:00.0',
        name: 'NVIDIA GeForce RTX 4090',
        utilization: 0.37,
        temperature_c: 45,
        ecc_uncorrected: 0,
      }),
    ]);
    let metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(
      /gpu_utilization\{engine="llamacpp",engine_version="[^"]+",pool_id="gpu0",replica_id="gpu0-r0",device="0"\} 0\.37/,
    );
    // nvidia-smi lists no process of this engine: its memory is unknown, not the device's 1234 MiB.
    expect(g.replicas[0]?.vram_used_bytes).toBeUndefined();
    expect(metrics).not.toMatch(/vram_used_bytes\{[^}]*pool_id="gpu0"/);
    // Once the driver lists the engine (the watchdog's child) with 812 MiB, that is its VRAM.
    const pool = h.running.orchestrator.pools.find((p) => p.id === 'gpu0');
    const watchdog = pool?.supervisor.replicas()[0]?.gpu?.pid;
    const engine = watchdog === undefined ? undefined : childPids(watchdog)[0];
    expect(engine).toBeDefined();
    await writeFile(APPS, `${engine}, GPU-6f1a0b2c-1111-2222-3333-444455556666, 812\n`);
    await until(async () => (await health('gpu0')).replicas[0]?.vram_used_bytes === 812 * 2 ** 20, 90_000);
    await until(async () => {
      metrics = await (await fetch(`${h.url}/metrics`)).text();
      return new RegExp(
        `vram_used_bytes\\{[^}]*pool_id="gpu0",replica_id="gpu0-r0",device="0"\\} ${812 * 2 ** 20}`,
      ).test(metrics);
    }, 30_000);
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
