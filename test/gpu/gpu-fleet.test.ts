/**
 * A prod orchestrator on a GPU host with the stand-in nvidia-smi (four GPUs with UUIDs, a
 * per-process memory list, failures on demand) and simulated engines (SPEC §5, §17 §4):
 * - each replica's engine gets its own CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER=PCI_BUS_ID;
 * - a configured GPU the host lacks makes that replica unready, naming it;
 * - two vLLM pools whose gpu_memory_utilization together overflow one GPU: the second is refused
 *   with the numbers (POOL_UNREADY) and admitted once nvidia-smi reports the memory freed;
 * - a replica's vram_used_bytes is its own engine's memory;
 * - a failed nvidia-smi read makes telemetry stale: health says so, the gauges disappear, and
 *   both come back with a good reading;
 * - a remote pool's telemetry is its node's GPUs (from heartbeats), not the orchestrator's.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig } from '../../src/config/schema.js';
import { sha256Hex } from '../../src/http/auth.js';
import { startOrchestrator, type RunningOrchestrator } from '../../src/main.js';
import { startPoolManagerd, type PoolManagerd } from '../../src/nodes/pool-managerd.js';
import { createLogger } from '../../src/util/logger.js';
import { KEYS, TEST_KEYS, call, simPool, task, until } from '../support/harness.js';
import { NvidiaSmiStandIn, STAND_IN, environOf, fixture } from '../support/nvidia-smi-stand-in.js';

const MIB = 2 ** 20;
const UUID = [
  'GPU-0c1d2e3f-aaaa-4bbb-8ccc-000000000000',
  'GPU-1c1d2e3f-aaaa-4bbb-8ccc-111111111111',
  'GPU-2c1d2e3f-aaaa-4bbb-8ccc-222222222222',
  'GPU-3c1d2e3f-aaaa-4bbb-8ccc-333333333333',
] as const;
const GONE = 'GPU-deadbeef-0000-4000-8000-000000000000';
const H100 = 'NVIDIA H100 80GB HBM3';

const quiet = createLogger({ level: 'silent' });
let smi: NvidiaSmiStandIn;
let orch: RunningOrchestrator;

async function startProd(raw: Omit<RawConfig, 'profile'>): Promise<RunningOrchestrator> {
  const { config } = validateConfig({
    profile: 'prod',
    listen: { host: '127.0.0.1', port: 0 },
    auth: { keys: TEST_KEYS },
    data_dir: await mkdtemp(join(tmpdir(), 'llorch-gpu-fleet-')),
    ...raw,
  });
  return startOrchestrator(config, { logger: quiet, processMetrics: false });
}

type Health = {
  ready: boolean;
  last_error: string | null;
  replicas: {
    replica_id: string;
    state: string;
    cause?: string;
    devices?: string[];
    host?: string;
    vram_used_bytes?: number;
  }[];
  telemetry?: {
    stale: boolean;
    last_good_ms: number;
    error?: string;
    devices: { index: number; uuid: string; name: string; host?: string; pci_bus_id?: string }[];
    missing_devices: { device: string; host?: string }[];
  };
};
const health = async (url: string, id: string) =>
  (await call(url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;
const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text();

/** The simulated engine of a replica (the watchdog's child): its pid, read from the engine itself. */
async function enginePid(poolId: string, replicaId: string): Promise<number> {
  const r = orch.orchestrator.pools
    .find((p) => p.id === poolId)
    ?.supervisor.replicas()
    .find((x) => x.id === replicaId);
  if (!r) throw new Error(`no replica ${replicaId}`);
  const state = (await (await fetch(`${r.adapter.baseUrl}/__sim/state`)).json()) as { pid: number };
  return state.pid;
}

const fast = { backoff_base_ms: 200, backoff_max_ms: 1_000, max_failures: 1_000 };

beforeAll(async () => {
  smi = await NvidiaSmiStandIn.create('four-gpus.csv');
  smi.install();
  // GPU 2 has 40 GiB held by a process that is none of ours (this test process stands in for it).
  await smi.setApps([{ pid: process.pid, uuid: UUID[2], mib: 40_960 }]);
  orch = await startProd({
    engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
    pools: [
      // One replica set of two replicas, each on its own GPU: one named by index, one by UUID.
      simPool('split', 'vllm', {
        replicas: 2,
        devices: [0, UUID[1]],
        replica_devices: [[0], [UUID[1]]],
        launch: { worker: 'sim', gpu_memory_utilization: 0.2, sim: { plan_gpu: true } },
      }),
      // Replica 1 is configured on a GPU this host does not have.
      simPool('ghost', 'llamacpp', {
        replicas: 2,
        devices: [3, GONE],
        replica_devices: [[3], [GONE]],
        sim: { plan_gpu: true },
      }),
      // Each fits GPU 2's 39.6 GiB free alone (0.3 × 79.6 GiB = 23.9 GiB); not both.
      simPool('va', 'vllm', {
        devices: [2],
        launch: { worker: 'sim', gpu_memory_utilization: 0.3, restart: fast, sim: { plan_gpu: true } },
      }),
      simPool('vb', 'vllm', {
        devices: [2],
        launch: { worker: 'sim', gpu_memory_utilization: 0.3, restart: fast, sim: { plan_gpu: true } },
      }),
    ],
  });
  await orch.ready;
}, 120_000);

afterAll(async () => {
  await orch?.close(1_000);
  await smi?.remove();
});

describe('per-replica devices (SPEC §17 §4)', () => {
  it("each replica's engine gets its own CUDA_VISIBLE_DEVICES, and CUDA_DEVICE_ORDER=PCI_BUS_ID", async () => {
    const h = await health(orch.url, 'split');
    expect(h.replicas).toEqual([
      expect.objectContaining({ replica_id: 'split-r0', state: 'ready', devices: ['0'] }),
      expect.objectContaining({ replica_id: 'split-r1', state: 'ready', devices: [UUID[1]] }),
    ]);
    const env0 = environOf(await enginePid('split', 'split-r0'));
    const env1 = environOf(await enginePid('split', 'split-r1'));
    expect([env0['CUDA_VISIBLE_DEVICES'], env0['CUDA_DEVICE_ORDER']]).toEqual(['0', 'PCI_BUS_ID']);
    expect([env1['CUDA_VISIBLE_DEVICES'], env1['CUDA_DEVICE_ORDER']]).toEqual([UUID[1], 'PCI_BUS_ID']);
    expect(h.telemetry?.devices).toEqual([
      expect.objectContaining({ index: 0, uuid: UUID[0], name: H100, pci_bus_id: '00000000:19:00.0' }),
      expect.objectContaining({ index: 1, uuid: UUID[1], name: H100, pci_bus_id: '00000000:3B:00.0' }),
    ]);
  });

  it('a configured GPU that nvidia-smi does not list makes that replica unready, naming it; the other serves', async () => {
    const h = await health(orch.url, 'ghost');
    expect(h.replicas[0]).toMatchObject({ state: 'ready', devices: ['3'] });
    expect(h.replicas[1]).toMatchObject({ state: 'unready', devices: [GONE] });
    expect(h.replicas[1]?.cause).toMatch(
      new RegExp(
        `^devices: replica 'ghost-r1' of pool 'ghost' is configured on GPU "${GONE}", which nvidia-smi does not list`,
      ),
    );
    expect(h.telemetry?.missing_devices).toEqual([{ device: GONE }]);
    expect(h.telemetry?.devices.map((d) => d.uuid)).toEqual([UUID[3]]);
  });
});

describe('capacity planning across pools (SPEC §5, ORCH-3003)', () => {
  it('two vLLM pools overflowing one GPU together: the second is refused with the numbers, then admitted when memory frees', async () => {
    const [a, b] = await Promise.all([health(orch.url, 'va'), health(orch.url, 'vb')]);
    // Whichever reserved first loaded; the other waits.
    const [first, second] = a.ready ? (['va', 'vb'] as const) : (['vb', 'va'] as const);
    expect([a.ready, b.ready].sort()).toEqual([false, true]);
    const waiting = second === 'va' ? a : b;
    expect(waiting.replicas[0]).toMatchObject({ state: 'unready' });
    expect(waiting.replicas[0]?.cause).toMatch(
      new RegExp(
        `^capacity: replica '${second}-r0' needs 23\\.89 GiB on GPU 2 \\(${H100}, ${UUID[2]}\\), 15\\.75 GiB free ` +
          `\\(79\\.65 GiB total, 40\\.00 GiB used by other processes, 23\\.89 GiB reserved for ${first}-r0\\) ` +
          `\\(vLLM gpu_memory_utilization 0\\.3 of each GPU's total memory\\)`,
      ),
    );
    const refused = await call(orch.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task(second, { engine: 'vllm' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'POOL_UNREADY', retriable: true });

    // The other process ends; the first pool's engine now holds its 23.9 GiB (the driver says so).
    const pid = await enginePid(first, `${first}-r0`);
    const held = Math.ceil((0.3 * 81_559 * MIB) / MIB);
    await smi.setApps([{ pid, uuid: UUID[2], mib: held }]);
    await smi.setGpus([
      { index: 0, uuid: UUID[0], name: H100, totalMib: 81_559, usedMib: 512, pciBusId: '00000000:19:00.0' },
      { index: 1, uuid: UUID[1], name: H100, totalMib: 81_559, usedMib: 512, pciBusId: '00000000:3B:00.0' },
      { index: 2, uuid: UUID[2], name: H100, totalMib: 81_559, usedMib: held, pciBusId: '00000000:4C:00.0' },
      {
        index: 3,
        uuid: UUID[3],
        name: 'NVIDIA L40S',
        totalMib: 46_068,
        usedMib: 768,
        pciBusId: '00000000:5D:00.0',
      },
    ]);
    await until(async () => (await health(orch.url, second)).ready, 60_000);
    // Each replica's VRAM is its own engine's: the first's as listed, the second's not listed yet.
    const h = await health(orch.url, first);
    expect(h.replicas[0]?.vram_used_bytes).toBe(held * MIB);
    expect((await health(orch.url, second)).replicas[0]?.vram_used_bytes).toBeUndefined();
    await until(async () =>
      new RegExp(
        `vram_used_bytes\\{[^}]*pool_id="${first}",replica_id="${first}-r0",device="2"\\} ${held * MIB}\\b`,
      ).test(await metricsText(orch.url)),
    );
    expect(await metricsText(orch.url)).not.toMatch(new RegExp(`vram_used_bytes\\{[^}]*pool_id="${second}"`));
  });
});

describe('telemetry that never fakes (SPEC §5)', () => {
  it('a failed nvidia-smi read: health says stale with the time of the last good reading, and the GPU gauges disappear until a good one', async () => {
    await until(async () => (await metricsText(orch.url)).includes('gpu_utilization{'));
    await smi.fail(true);
    onTestFinished(() => smi.fail(false));
    await until(async () => (await health(orch.url, 'split')).telemetry?.stale === true, 90_000);
    const h = await health(orch.url, 'split');
    const lastGood = h.telemetry?.last_good_ms ?? 0;
    expect(h.telemetry?.error).toMatch(/NVIDIA driver/);
    // The next export after the failed read drops every GPU series.
    await until(async () => {
      const text = await metricsText(orch.url);
      return !text.includes('gpu_utilization{') && !text.includes('vram_used_bytes{');
    }, 30_000);
    // However many reads failed meanwhile, the reading shown is still the last good one.
    expect((await health(orch.url, 'split')).telemetry).toMatchObject({
      stale: true,
      last_good_ms: lastGood,
    });
    await smi.fail(false);
    await until(async () => (await health(orch.url, 'split')).telemetry?.stale === false, 90_000);
    expect((await health(orch.url, 'split')).telemetry?.last_good_ms).toBeGreaterThan(lastGood);
    await until(async () => (await metricsText(orch.url)).includes('gpu_utilization{'), 90_000);
  });
});

describe("a remote pool's telemetry is its node's (SPEC §5)", () => {
  it('health shows the GPUs its node reports in heartbeats, not the orchestrator host', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-gpu-node-'));
    // The node's nvidia-smi sees other GPUs than the orchestrator's (two-gpus.csv).
    const nodeSmi = join(dir, 'nvidia-smi');
    await writeFile(
      nodeSmi,
      `#!/bin/sh\nFAKE_NVIDIA_SMI_FILE='${fixture('two-gpus.csv')}' FAKE_NVIDIA_SMI_APPS_FILE= FAKE_NVIDIA_SMI_FAIL_FILE= exec '${STAND_IN}' "$@"\n`,
    );
    await chmod(nodeSmi, 0o755);
    const credential = randomUUID();
    const remote = await startProd({
      engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
      nodes: [{ id: 'gpu-x', sha256: sha256Hex(credential) }],
      node_timeout_ms: 5_000,
      pools: [{ ...simPool('far', 'vllm', { devices: [1] }), hosts: ['gpu-x'] }],
    });
    let node: PoolManagerd | undefined;
    try {
      const credentialEnv = `LLORCH_TEST_CRED_${process.pid}`;
      process.env[credentialEnv] = credential;
      const { config } = validateConfig({
        profile: 'prod',
        engines: { nvidia_smi_path: nodeSmi, telemetry_interval_ms: 100 },
        data_dir: dir,
        node: { id: 'gpu-x', orchestrator_url: remote.url, credential_env: credentialEnv, heartbeat_ms: 100 },
        pools: [
          simPool('far', 'vllm', {
            devices: [1],
            launch: { worker: 'sim', gpu_memory_utilization: 0.02, sim: { plan_gpu: true } },
          }),
        ],
      });
      node = await startPoolManagerd(config, quiet);
      await node.registered;
      await until(async () => (await health(remote.url, 'far')).ready, 60_000);
      await until(async () => (await health(remote.url, 'far')).telemetry !== undefined, 90_000);
      const h = await health(remote.url, 'far');
      expect(h.telemetry?.devices).toEqual([
        expect.objectContaining({ index: 1, name: 'NVIDIA GeForce RTX 3090', host: 'gpu-x' }),
      ]);
      expect(h.telemetry?.stale).toBe(false);
      expect(h.replicas[0]).toMatchObject({ host: 'gpu-x', devices: ['1'] });
    } finally {
      await node?.stop();
      await remote.close(1_000);
    }
  }, 120_000);
});
