import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseNvidiaSmiCsv, queryGpus } from '../../src/gpu/nvidia-smi.js';
import { readGgufMetadata } from '../../src/models/gguf-reader.js';
import { estimateMemory, checkHeadroom } from '../../src/pool/headroom.js';
import { resolvePool } from '../support/engine-under-test.js';
import { tinyModelPath, tinyPool } from '../support/harness.js';

const CSV = new URL('../fixtures/nvidia-smi/two-gpus.csv', import.meta.url);
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
