/**
 * Per-replica devices (SPEC §17 §4): `devices` by index or UUID, `replica_devices` placing each
 * replica on its own GPUs, and what each engine process is given — its own
 * CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER=PCI_BUS_ID, tensor parallelism over its own GPUs.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawPool } from '../../src/config/schema.js';
import { engineEnv, tgiArgs, vllmArgs } from '../../src/pool/engine-launcher.js';

const UUID_A = 'GPU-0c1d2e3f-aaaa-4bbb-8ccc-000000000000';
const UUID_B = 'GPU-1c1d2e3f-aaaa-4bbb-8ccc-111111111111';

const raw = (extra: Partial<RawPool>): RawPool => ({
  id: 'p',
  engine: 'vllm',
  model: { id: 'm', path: '/models/m' },
  ctx: 4096,
  replicas: 2,
  devices: [0, 1],
  ...extra,
});
const resolve = (extra: Partial<RawPool>, profile: 'prod' | 'dev' = 'prod') => {
  const pool = validateConfig({ profile, pools: [raw(extra)] }).config.pools[0];
  if (!pool) throw new Error('no pool');
  return pool;
};
const refusal = (extra: Partial<RawPool>, profile: 'prod' | 'dev' = 'prod') => {
  try {
    validateConfig({ profile, pools: [raw(extra)] });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('accepted');
};

describe('replica_devices (config)', () => {
  it('places each replica on its own GPUs; devices stays every GPU of the pool', () => {
    const p = resolve({ devices: [0, UUID_B], replica_devices: [[0], [UUID_B]] });
    expect(p.devices).toEqual([0, UUID_B]);
    expect(p.replicaDevices).toEqual([[0], [UUID_B]]);
  });

  it('without it every replica gets the whole mask', () => {
    expect(resolve({}).replicaDevices).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(resolve({ devices: 'cpu', engine: 'llamacpp' }, 'dev').replicaDevices).toEqual(['cpu', 'cpu']);
  });

  it('one entry per replica, drawn from devices and using all of them; none for CPU pools', () => {
    expect(refusal({ replica_devices: [[0]] })).toMatch(
      /pools\[0\]\.replica_devices: has 1 entry but the pool has 2 replica\(s\)/,
    );
    expect(refusal({ replica_devices: [[0], [2]] })).toMatch(
      /pools\[0\]\.replica_devices\[1\]: GPU 2 is not in the pool's devices \(0, 1\)/,
    );
    expect(refusal({ devices: [0, 1, 2], replica_devices: [[0], [1]] })).toMatch(
      /pools\[0\]\.replica_devices: no replica uses 2 of devices/,
    );
    expect(refusal({ engine: 'llamacpp', devices: 'cpu', replica_devices: [[0], [1]] }, 'dev')).toMatch(
      /pools\[0\]\.replica_devices: places replicas on GPUs, but devices is 'cpu'/,
    );
    expect(refusal({ replica_devices: [[], [1]] })).toMatch(/replica_devices/);
  });

  it('a GPU is an index or a UUID as nvidia-smi prints it', () => {
    expect(resolve({ devices: [UUID_A, UUID_B] }).devices).toEqual([UUID_A, UUID_B]);
    expect(refusal({ devices: ['GPU-0', 1] })).toMatch(/devices/);
  });

  it("tensor_split gives one share per device of a replica; gpu_memory_utilization is vLLM's", () => {
    const split = resolve({
      engine: 'llamacpp',
      devices: [0, 1, 2, 3],
      replica_devices: [
        [0, 1],
        [2, 3],
      ],
      tensor_split: [3, 1],
    });
    expect(split.tensorSplit).toEqual([3, 1]);
    expect(refusal({ engine: 'llamacpp', replica_devices: [[0], [1]], tensor_split: [1, 1] })).toMatch(
      /pools\[0\]\.tensor_split: has 2 entries but replicas have 1 device\(s\) in replica_devices/,
    );
    expect(refusal({ engine: 'llamacpp', launch: { gpu_memory_utilization: 0.5 } })).toMatch(
      /pools\[0\]\.launch\.gpu_memory_utilization: only vLLM takes a GPU memory share/,
    );
    expect(resolve({ launch: { gpu_memory_utilization: 0.45 } }).launch.gpuMemoryUtilization).toBe(0.45);
    expect(resolve({}).launch.gpuMemoryUtilization).toBe(0.9);
    expect(refusal({ launch: { gpu_memory_utilization: 1.5 } })).toMatch(/gpu_memory_utilization/);
  });
});

describe('per-replica engine launch', () => {
  const pool = resolve({
    devices: [0, 1, UUID_A],
    replicas: 2,
    replica_devices: [[0, 1], [UUID_A]],
    launch: { gpu_memory_utilization: 0.45 },
  });

  it("each engine sees only its replica's GPUs, numbered in PCI bus order; UUIDs pass through", () => {
    expect(engineEnv(pool, {}, 0)).toMatchObject({
      CUDA_VISIBLE_DEVICES: '0,1',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    });
    expect(engineEnv(pool, {}, 1)).toMatchObject({
      CUDA_VISIBLE_DEVICES: UUID_A,
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    });
  });

  it("tensor parallelism follows the replica's own device count; vLLM's memory share is explicit", () => {
    const tp = (i: number) => {
      const a = vllmArgs(pool, 9000, i);
      return a[a.indexOf('--tensor-parallel-size') + 1];
    };
    expect([tp(0), tp(1)]).toEqual(['2', '1']);
    const a = vllmArgs(pool, 9000, 1);
    expect(a[a.indexOf('--gpu-memory-utilization') + 1]).toBe('0.45');
    const tgi = resolve({ engine: 'tgi', devices: [0, 1, 2], replica_devices: [[0, 1], [2]] });
    const shards = (i: number) => {
      const x = tgiArgs(tgi, 9000, i);
      return x[x.indexOf('--num-shard') + 1];
    };
    expect([shards(0), shards(1)]).toEqual(['2', '1']);
  });
});
