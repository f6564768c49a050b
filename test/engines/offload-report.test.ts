/**
 * The GPU offload check (ORCH-1101, ORCH-3018) over llama-server's own report. The CPU lines were
 * printed by the pinned CPU build (`-ngl 999 -lv 4`); the CUDA lines follow the format strings of
 * the pinned source (llama.cpp v0.5.0, commit de3ff81): src/llama-model.cpp `load_tensors`,
 * ggml/src/ggml-cuda/ggml-cuda.cu `ggml_cuda_init`, src/llama.cpp `llama_model_load_from_file_impl`.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  OFFLOAD_REPORT_LINES,
  judgeOffload,
  llamaOffloadCheck,
  parseOffloadReport,
} from '../../src/engines/llamacpp/offload-report.js';
import { createLogger } from '../../src/util/logger.js';

const CPU_BUILD = [
  '0.00.000.757 I srv  llama_server: initializing ...',
  'warning: no usable GPU found, --gpu-layers option will be ignored',
  'warning: one possible reason is that llama.cpp was compiled without GPU support',
  '0.00.019.949 I load_tensors: loading model tensors, this can take a while... (load_mode = mmap)',
  '0.00.020.365 I load_tensors:   CPU_Mapped model buffer size =     0.44 MiB',
];

const cudaBuild = (offloaded: string) => [
  '0.00.120.101 I ggml_cuda_init: found 1 CUDA devices (Total VRAM: 143156 MiB):',
  '0.00.120.110 I   Device 0: NVIDIA H200, compute capability 9.0, VMM: yes, VRAM: 143156 MiB',
  '0.00.410.200 I llama_model_load_from_file_impl: using device CUDA0 (NVIDIA H200) (0000:1b:00.0) - 142512 MiB free',
  '0.00.532.001 I load_tensors: offloading output layer to GPU',
  '0.00.532.010 I load_tensors: offloading 31 repeating layers to GPU',
  `0.00.532.020 I load_tensors: offloaded ${offloaded} layers to GPU`,
  '0.00.532.100 I load_tensors:        CUDA0 model buffer size =  4403.49 MiB',
];

const expectation = { requestedLayers: 999, binary: '/opt/llama-server', build: 'cuda' };

describe('llama-server offload report', () => {
  it('reads the offloaded layers and the CUDA devices', () => {
    expect(parseOffloadReport(cudaBuild('33/33'))).toEqual({
      offloaded: { layers: 33, of: 33 },
      cudaDevicesFound: 1,
      cudaDevices: ['CUDA0 (NVIDIA H200)'],
      noUsableGpu: false,
    });
    const cpu = parseOffloadReport(CPU_BUILD);
    expect(cpu).toMatchObject({ offloaded: undefined, cudaDevicesFound: 0, noUsableGpu: true });
  });

  it('keeps exactly the report lines out of the engine output', () => {
    const kept = [...CPU_BUILD, ...cudaBuild('33/33')].filter((l) => OFFLOAD_REPORT_LINES.test(l));
    expect(kept).toEqual([
      CPU_BUILD[1],
      cudaBuild('')[0],
      cudaBuild('')[1],
      cudaBuild('')[2],
      cudaBuild('33/33')[5],
    ]);
  });

  it('passes a model offloaded as requested (llama.cpp caps the request at n_layer + 1)', () => {
    expect(judgeOffload(parseOffloadReport(cudaBuild('33/33')), expectation)).toEqual({
      ok: true,
      summary: 'offloaded 33/33 layers to the GPU on CUDA0 (NVIDIA H200)',
    });
    expect(
      judgeOffload(parseOffloadReport(cudaBuild('20/33')), { ...expectation, requestedLayers: 20 }).ok,
    ).toBe(true);
  });

  it('refuses a CPU build, naming the binary and what the engine said', () => {
    const v = judgeOffload(parseOffloadReport(CPU_BUILD), { ...expectation, build: 'cpu' });
    expect(v.ok).toBe(false);
    expect(!v.ok && v.cause).toBe(
      'no layers offloaded to the GPU (CPU build?): llama-server printed no "offloaded N/M layers to GPU" ' +
        'line; it warned "no usable GPU found, --gpu-layers option will be ignored" (launch.gpu_layers: 999); ' +
        'binary /opt/llama-server (cpu build)',
    );
  });

  it('refuses 0 offloaded layers, and fewer than requested, with the numbers', () => {
    const zero = judgeOffload(parseOffloadReport(cudaBuild('0/33')), expectation);
    expect(!zero.ok && zero.cause).toMatch(
      /^no layers offloaded to the GPU: llama-server offloaded 0\/33 layers \(launch\.gpu_layers: 999\); binary \/opt\/llama-server \(cuda build\)$/,
    );
    const fewer = judgeOffload(parseOffloadReport(cudaBuild('20/33')), expectation);
    expect(!fewer.ok && fewer.cause).toMatch(
      /^only 20\/33 layers offloaded to the GPU, 33 requested \(launch\.gpu_layers: 999\): the rest would run on CPU/,
    );
  });

  it('refuses an offload that names no CUDA device (inference only on NVIDIA GPUs)', () => {
    const v = judgeOffload(parseOffloadReport(['load_tensors: offloaded 33/33 layers to GPU']), expectation);
    expect(!v.ok && v.cause).toMatch(/offloaded 33\/33 layers but reported no CUDA device/);
  });

  it('takes the last report when the model was loaded twice (a --fit dry run first)', () => {
    const lines = [...cudaBuild('0/33'), ...cudaBuild('33/33')];
    expect(parseOffloadReport(lines).offloaded).toEqual({ layers: 33, of: 33 });
  });
});

describe('offload check of a pool', () => {
  const logs: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    }),
  });
  const gpuPool = {
    id: 'g',
    engine: 'llamacpp',
    devices: [0],
    launch: { worker: 'native', gpuLayers: 999 },
  } as const;

  it('prod refuses the replica and counts it; dev only warns', () => {
    let refused = 0;
    const prod = llamaOffloadCheck({
      pool: gpuPool,
      profile: 'prod',
      binary: '/b',
      build: 'cpu',
      logger,
      onRefused: () => refused++,
    });
    expect(prod?.verify(CPU_BUILD, 'g-r0')).toMatch(
      /^no layers offloaded to the GPU \(CPU build\?\).*; the prod profile serves only from the GPU \(ORCH-1101, ORCH-3018\)$/,
    );
    expect(refused).toBe(1);
    expect(prod?.verify(cudaBuild('33/33'), 'g-r0')).toBeUndefined();
    expect(logs.join('')).toContain('g-r0: offloaded 33/33 layers to the GPU on CUDA0 (NVIDIA H200)');

    const dev = llamaOffloadCheck({ pool: gpuPool, profile: 'dev', binary: '/b', build: 'cpu', logger });
    expect(dev?.verify(CPU_BUILD, 'g-r0')).toBeUndefined();
    expect(logs.join('')).toMatch(/DEV PROFILE: g-r0 serves although no layers offloaded to the GPU/);
  });

  it('applies only to native llama.cpp pools on GPUs with layers to offload', () => {
    const base = { profile: 'prod', binary: '/b', build: 'cpu', logger } as const;
    expect(llamaOffloadCheck({ ...base, pool: { ...gpuPool, devices: 'cpu' } })).toBeUndefined();
    expect(
      llamaOffloadCheck({ ...base, pool: { ...gpuPool, launch: { worker: 'native', gpuLayers: 0 } } }),
    ).toBeUndefined();
    expect(llamaOffloadCheck({ ...base, pool: { ...gpuPool, engine: 'vllm' } })).toBeUndefined();
    expect(
      llamaOffloadCheck({ ...base, pool: { ...gpuPool, launch: { worker: 'sim', gpuLayers: 999 } } }),
    ).toBeUndefined();
  });
});
