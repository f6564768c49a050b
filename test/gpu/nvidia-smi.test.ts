import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { engineMemoryOn, type ProcessTable } from '../../src/gpu/engine-memory.js';
import {
  findGpu,
  parseComputeAppsCsv,
  parseNvidiaSmiCsv,
  queryComputeApps,
  queryGpus,
} from '../../src/gpu/nvidia-smi.js';
import { readGgufMetadata } from '../../src/models/gguf-reader.js';
import { estimateMemory, checkHeadroom } from '../../src/pool/headroom.js';
import { resolvePool } from '../support/engine-under-test.js';
import { tinyModelPath, tinyPool } from '../support/harness.js';

const CSV = new URL('../fixtures/nvidia-smi/two-gpus.csv', import.meta.url);
const FOUR = new URL('../fixtures/nvidia-smi/four-gpus.csv', import.meta.url);
const APPS = new URL('../fixtures/nvidia-smi/four-gpus-apps.csv', import.meta.url);
const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;

describe('nvidia-smi', () => {
  it('parses the documented csv,noheader,nounits query output, [N/A] included', () => {
    const gpus = parseNvidiaSmiCsv(readFileSync(CSV, 'utf8'));
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({
      index: 0,
      name: 'NVIDIA GeForce RTX 4090',
      driverVersion: '550.54.14',
      memoryTotalBytes: 24564 * 2 ** 20,
      memoryFreeBytes: 23330 * 2 ** 20,
      utilization: 0.37,
      temperatureC: 45,
      eccUncorrected: 0,
    });
    expect(gpus[1]?.eccUncorrected).toBeUndefined();
    expect(gpus[1]?.pciBusId).toBe('00000000:02:00.0');
  });

  it('finds a configured device by index or by UUID (case-insensitive), and nothing else', () => {
    const gpus = parseNvidiaSmiCsv(readFileSync(FOUR, 'utf8'));
    expect(gpus.map((g) => g.pciBusId)).toEqual([
      '00000000:19:00.0',
      '00000000:3B:00.0',
      '00000000:4C:00.0',
      '00000000:5D:00.0',
    ]);
    expect(findGpu(gpus, 3)?.name).toBe('NVIDIA L40S');
    expect(findGpu(gpus, 'GPU-2C1D2E3F-AAAA-4BBB-8CCC-222222222222')?.index).toBe(2);
    expect(findGpu(gpus, 4)).toBeUndefined();
    expect(findGpu(gpus, 'GPU-00000000-0000-0000-0000-000000000000')).toBeUndefined();
  });

  it('parses --query-compute-apps=pid,gpu_uuid,used_memory; [N/A] memory stays unknown', () => {
    expect(parseComputeAppsCsv(readFileSync(APPS, 'utf8'))).toEqual([
      { pid: 4242, gpuUuid: 'GPU-2c1d2e3f-aaaa-4bbb-8ccc-222222222222', usedMemoryBytes: 40448 * 2 ** 20 },
    ]);
    expect(parseComputeAppsCsv('7, GPU-x, [N/A]\n\n')).toEqual([
      { pid: 7, gpuUuid: 'GPU-x', usedMemoryBytes: undefined },
    ]);
    expect(parseComputeAppsCsv('No running compute processes found\n')).toEqual([]);
    expect(() => parseComputeAppsCsv('garbage')).toThrow(/unexpected nvidia-smi compute-apps line/);
  });

  it("an engine's memory is that of the processes in its watchdog's process group, per GPU", () => {
    const uuid = 'GPU-2c1d2e3f-aaaa-4bbb-8ccc-222222222222';
    const apps = [
      { pid: 101, gpuUuid: uuid, usedMemoryBytes: 1000 }, // the engine (watchdog 100's child)
      { pid: 102, gpuUuid: uuid, usedMemoryBytes: 500 }, // a worker it forked
      { pid: 102, gpuUuid: 'GPU-other', usedMemoryBytes: 7 }, // the same worker, another GPU
      { pid: 200, gpuUuid: uuid, usedMemoryBytes: 9000 }, // somebody else
    ];
    const procs: ProcessTable = { groupOf: (pid) => ({ 101: 100, 102: 100, 200: 200 })[pid] };
    expect(engineMemoryOn(apps, 100, uuid.toUpperCase(), procs)).toBe(1500);
    expect(engineMemoryOn(apps, 300, uuid, procs)).toBeUndefined();
  });

  it('a missing binary or a failing driver is an answer, not an exception', async () => {
    expect(await queryGpus('/nonexistent/nvidia-smi')).toEqual({
      ok: false,
      error: '/nonexistent/nvidia-smi not found',
    });
    process.env['FAKE_NVIDIA_SMI_FAIL'] = '1';
    const failed = await queryGpus(STAND_IN);
    delete process.env['FAKE_NVIDIA_SMI_FAIL'];
    expect(failed).toMatchObject({ ok: false, error: expect.stringContaining('NVIDIA driver') });
    process.env['FAKE_NVIDIA_SMI_FILE'] = CSV.pathname;
    expect(await queryGpus(STAND_IN)).toMatchObject({ ok: true, gpus: [{ index: 0 }, { index: 1 }] });
  });

  it('the stand-in answers the per-process query from its file, with no processes when none is set', async () => {
    delete process.env['FAKE_NVIDIA_SMI_APPS_FILE'];
    expect(await queryComputeApps(STAND_IN)).toEqual({ ok: true, apps: [] });
    process.env['FAKE_NVIDIA_SMI_APPS_FILE'] = APPS.pathname;
    expect(await queryComputeApps(STAND_IN)).toMatchObject({ ok: true, apps: [{ pid: 4242 }] });
    delete process.env['FAKE_NVIDIA_SMI_APPS_FILE'];
  });
});

describe('headroom', () => {
  it('estimates weights, KV from GGUF metadata, and buffers; refuses what does not fit per device', async () => {
    const path = await tinyModelPath();
    const meta = await readGgufMetadata(path);
    expect(meta.get('general.architecture')).toBe('llama');
    expect(meta.get('llama.block_count')).toBe(2);
    const pool = resolvePool({ ...tinyPool('h', path), devices: [0], replicas: 2 });
    const est = await estimateMemory(pool);
    // 2 layers × 64 embd × K and V × f16 = 512 bytes per token.
    expect(est.kvBytes).toBe(512 * pool.ctx * pool.launch.parallel);
    expect(est.totalBytes).toBe(est.weightsBytes + est.kvBytes + est.overheadBytes);
    const gpus = parseNvidiaSmiCsv(readFileSync(CSV, 'utf8'));
    expect(checkHeadroom(pool, est, gpus, 2 ** 40)).toBeUndefined();
    const full = resolvePool({ ...tinyPool('h', path), devices: [1], replicas: 5 });
    expect(checkHeadroom(full, est, gpus, 2 ** 40)).toMatch(
      /needs \d+\.\d+ GiB on GPU 1 \(NVIDIA GeForce RTX 3090\).*1\.05 GiB free/,
    );
    const missing = resolvePool({ ...tinyPool('h', path), devices: [3] });
    expect(checkHeadroom(missing, est, gpus, 2 ** 40)).toMatch(
      /GPU 3, which this host does not have \(GPUs: 0, 1\)/,
    );
    const cpu = resolvePool(tinyPool('h', path));
    expect(checkHeadroom(cpu, est, undefined, 1024)).toMatch(/host RAM/);
  });
});
