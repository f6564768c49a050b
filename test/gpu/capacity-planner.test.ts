/**
 * The capacity planner (SPEC §5, ORCH-3003) against readings it is handed: reservations across
 * pools on a shared GPU, loads serialized per GPU, our own engines told apart from other
 * processes, refusals that name the numbers, and which refusals are worth retrying.
 */
import { describe, expect, it } from 'vitest';
import type { ProcessTable } from '../../src/gpu/engine-memory.js';
import type { GpuSnapshot } from '../../src/gpu/gpu-snapshot.js';
import type { ComputeApp, GpuInfo } from '../../src/gpu/nvidia-smi.js';
import { CapacityPlanner, type CapacityRequest } from '../../src/pool/capacity-planner.js';
import { replicaDemand } from '../../src/pool/headroom.js';
import { createLogger } from '../../src/util/logger.js';
import { resolvePool } from '../support/engine-under-test.js';
import { simPool } from '../support/harness.js';

const GIB = 1024 ** 3;
const UUID0 = 'GPU-0c1d2e3f-aaaa-4bbb-8ccc-000000000000';
const UUID1 = 'GPU-1c1d2e3f-aaaa-4bbb-8ccc-111111111111';

function gpu(index: number, uuid: string, totalGib: number, usedGib: number): GpuInfo {
  return {
    index,
    uuid,
    name: 'NVIDIA L4',
    driverVersion: '570.124.06',
    memoryTotalBytes: totalGib * GIB,
    memoryUsedBytes: usedGib * GIB,
    memoryFreeBytes: (totalGib - usedGib) * GIB,
    utilization: 0,
    temperatureC: 40,
    eccUncorrected: 0,
    pciBusId: undefined,
  };
}

/** What "the driver" reports; tests change it between calls. */
class Host {
  gpus: GpuInfo[] = [gpu(0, UUID0, 24, 2), gpu(1, UUID1, 24, 0)];
  apps: ComputeApp[] | undefined = [];
  stale = false;
  reads = 0;
  read = async (): Promise<GpuSnapshot> => {
    this.reads++;
    return {
      gpus: this.gpus,
      apps: this.apps,
      stale: this.stale,
      lastGoodMs: 1_000,
      error: this.stale ? 'driver gone' : undefined,
    };
  };
}

const logger = createLogger({ level: 'silent' });
const req = (replicaId: string, devices: (number | string)[], gib: number[]): CapacityRequest => ({
  poolId: replicaId.split('-')[0] ?? replicaId,
  replicaId,
  devices,
  parallel: 1,
  demand: async () => ({ bytes: gib.map((g) => g * GIB), what: 'test demand' }),
});

describe('capacity planner', () => {
  it('two pools that each fit an empty GPU but not together: the second is refused with the numbers, and admitted once the first ends', async () => {
    const host = new Host();
    const planner = new CapacityPlanner({ read: host.read, logger });
    const a = await planner.admit(req('a-r0', [0], [14]));
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    a.lease.started(1234);
    a.lease.loaded();
    const b = await planner.admit(req('b-r0', [0], [14]));
    expect(b).toEqual({
      ok: false,
      retry: true,
      cause:
        `capacity: replica 'b-r0' needs 14.00 GiB on GPU 0 (NVIDIA L4, ${UUID0}), 8.00 GiB free ` +
        '(24.00 GiB total, 2.00 GiB used by other processes, 14.00 GiB reserved for a-r0) (test demand)',
    });
    // Another GPU is another account.
    expect((await planner.admit(req('b-r1', [1], [14]))).ok).toBe(true);
    a.lease.release();
    expect((await planner.admit(req('b-r0', [0], [14]))).ok).toBe(true);
  });

  it("our engines' own memory is not counted twice: nvidia-smi's used memory minus what they hold is other processes'", async () => {
    const host = new Host();
    const procs: ProcessTable = { groupOf: (pid) => ({ 501: 500, 900: 900 })[pid] };
    const planner = new CapacityPlanner({ read: host.read, logger, procs });
    const a = await planner.admit(req('a-r0', [0], [10]));
    if (!a.ok) throw new Error(a.cause);
    a.lease.started(500); // the watchdog; its child 501 holds the memory
    a.lease.loaded();
    // The engine loaded 9 GiB (under its 10 GiB reservation); another process holds 2 GiB.
    host.gpus = [gpu(0, UUID0, 24, 11)];
    host.apps = [
      { pid: 501, gpuUuid: UUID0, usedMemoryBytes: 9 * GIB },
      { pid: 900, gpuUuid: UUID0, usedMemoryBytes: 2 * GIB },
    ];
    const accounts = await planner.accounts();
    expect(accounts?.get(UUID0)).toMatchObject({
      othersBytes: 2 * GIB,
      reservedBytes: 10 * GIB,
      freeBytes: 12 * GIB,
      holders: ['a-r0'],
    });
    expect((await planner.admit(req('b-r0', [0], [12]))).ok).toBe(true);
  });

  it('where pids cannot be matched (another PID namespace), our engines are assumed to hold their reservations', async () => {
    const host = new Host();
    const procs: ProcessTable = { groupOf: () => undefined };
    const planner = new CapacityPlanner({ read: host.read, logger, procs });
    const a = await planner.admit(req('a-r0', [0], [10]));
    if (!a.ok) throw new Error(a.cause);
    a.lease.started(500);
    a.lease.loaded();
    host.gpus = [gpu(0, UUID0, 24, 12)];
    host.apps = [{ pid: 77777, gpuUuid: UUID0, usedMemoryBytes: 10 * GIB }];
    expect((await planner.accounts())?.get(UUID0)).toMatchObject({
      othersBytes: 2 * GIB,
      freeBytes: 12 * GIB,
    });
  });

  it('loads on one GPU are serialized: the next replica is measured only once the previous one has loaded', async () => {
    const host = new Host();
    const planner = new CapacityPlanner({ read: host.read, logger });
    const a = await planner.admit(req('a-r0', [0, UUID1], [4, 4]));
    if (!a.ok) throw new Error(a.cause);
    let bDone = false;
    const b = planner.admit(req('b-r0', [UUID1], [4])).then((x) => ((bDone = true), x));
    // A replica on GPU 0 only is not in b's way, but waits for a, which loads on GPU 0 too.
    let cDone = false;
    const c = planner.admit(req('c-r0', [0], [4])).then((x) => ((cDone = true), x));
    await new Promise((r) => setTimeout(r, 50));
    expect(bDone || cDone).toBe(false);
    a.lease.loaded();
    const [bb, cc] = await Promise.all([b, c]);
    expect(bb.ok && cc.ok).toBe(true);
    expect((await planner.accounts())?.get(UUID1)).toMatchObject({
      reservedBytes: 8 * GIB,
      holders: ['a-r0', 'b-r0'],
    });
    // A refused replica leaves the queue at once.
    if (bb.ok) bb.lease.loaded();
    expect((await planner.admit(req('d-r0', [UUID1], [100]))).ok).toBe(false);
    expect((await planner.admit(req('e-r0', [UUID1], [1]))).ok).toBe(true);
  });

  it('refusals that waiting cannot fix are final; stale telemetry and full GPUs are retried', async () => {
    const host = new Host();
    const planner = new CapacityPlanner({ read: host.read, logger });
    expect(await planner.admit(req('a-r0', ['GPU-99999999-aaaa-4bbb-8ccc-999999999999'], [1]))).toMatchObject(
      {
        ok: false,
        retry: false,
        cause: expect.stringMatching(
          /^devices: replica 'a-r0' of pool 'a' is configured on GPU "GPU-99999999-[-a-f0-9]+", which nvidia-smi does not list on this host \(GPUs: 0 GPU-0c1d2e3f-.*, 1 GPU-1c1d2e3f-/,
        ),
      },
    );
    expect(await planner.admit(req('a-r0', [1], [25]))).toMatchObject({
      ok: false,
      retry: false,
      cause: expect.stringMatching(/needs 25\.00 GiB on GPU 1 .*, which has 24\.00 GiB in all/),
    });
    host.stale = true;
    expect(await planner.admit(req('a-r0', [1], [1]))).toMatchObject({
      ok: false,
      retry: true,
      cause: expect.stringMatching(
        /^capacity: GPU telemetry is stale \(nvidia-smi failed: driver gone; last good reading at 1970-/,
      ),
    });
  });

  it('without GPU telemetry on this host there is nothing to plan against', async () => {
    const planner = new CapacityPlanner({ read: async () => undefined, logger });
    expect((await planner.admit(req('a-r0', [0], [1000]))).ok).toBe(true);
  });
});

describe('replica demand', () => {
  it("vLLM reserves gpu_memory_utilization of each of the replica's GPUs, whatever the model", async () => {
    const pool = resolvePool(
      simPool('v', 'vllm', { devices: [0, 1], launch: { worker: 'sim', gpu_memory_utilization: 0.6 } }),
    );
    const d = await replicaDemand(pool, [gpu(0, UUID0, 80, 0), gpu(1, UUID1, 24, 0)]);
    expect(d.bytes).toEqual([Math.ceil(0.6 * 80 * GIB), Math.ceil(0.6 * 24 * GIB)]);
    expect(d.what).toBe("vLLM gpu_memory_utilization 0.6 of each GPU's total memory");
    // Its default is passed to vLLM and counted the same way.
    const dflt = resolvePool(simPool('v', 'vllm', { devices: [0] }));
    expect((await replicaDemand(dflt, [gpu(0, UUID0, 10, 0)])).bytes).toEqual([Math.ceil(0.9 * 10 * GIB)]);
  });
});
