import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import {
  CMAKE_FLAGS,
  buildOf,
  cachedBinaryPath,
  chooseLlamaBuild,
  cmakeFlags,
  defaultCacheDir,
  findLlamaServer,
  findNvcc,
  parseVersion,
  provisionLlamaServer,
  type BuildChoice,
} from '../../src/engines/llamacpp/provision.js';

async function fakeBinary(dir: string, name = 'llama-server'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const p = join(dir, name);
  await writeFile(p, '#!/bin/sh\necho "version: 1 (abc)"\n');
  await chmod(p, 0o755);
  return p;
}

describe('llama-server provisioning', () => {
  it('prefers the configured path, then PATH, then the cache', async () => {
    const root = await mkdtemp(join(tmpdir(), 'prov-'));
    const cacheDir = join(root, 'cache');
    const cached = await fakeBinary(join(cachedBinaryPath(cacheDir), '..'));
    const onPath = await fakeBinary(join(root, 'bin'));
    const explicit = await fakeBinary(join(root, 'opt'), 'my-llama');
    const env = { PATH: join(root, 'bin') };
    expect(await findLlamaServer({ cacheDir, env, explicitPath: explicit })).toBe(explicit);
    expect(await findLlamaServer({ cacheDir, env })).toBe(onPath);
    expect(await findLlamaServer({ cacheDir, env: { PATH: '' } })).toBe(cached);
    expect(await findLlamaServer({ cacheDir: join(root, 'empty'), env: { PATH: '' } })).toBeUndefined();
  });

  it('fails clearly when a configured binary is missing', async () => {
    await expect(
      findLlamaServer({ cacheDir: '/nonexistent', explicitPath: '/no/such/llama-server' }),
    ).rejects.toThrow(/not an executable/);
    await expect(
      findLlamaServer({
        cacheDir: '/nonexistent',
        explicitPath: 'no-such-binary',
        env: { PATH: '/nonexistent' },
      }),
    ).rejects.toThrow(/on PATH/);
  });

  it('derives the cache dir from XDG_CACHE_HOME only when it is absolute', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u')).toBe('/x/llama-orch');
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'rel' }, '/home/u')).toBe('/home/u/.cache/llama-orch');
  });

  it('parses the version line into the /props build_info form', () => {
    expect(parseVersion('version: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU')).toBe('b1-de3ff81');
    expect(parseVersion('version: 4567 (abcdef0)')).toBe('b4567-abcdef0');
    expect(parseVersion('nothing')).toBe('unknown');
  });
});

/** A cached build with its record, as the build writes it. */
async function cachedBuild(cacheDir: string, variant: 'cpu' | 'cuda', record?: object): Promise<string> {
  const bin = await fakeBinary(join(cachedBinaryPath(cacheDir, variant), '..'));
  await writeFile(
    join(bin, '..', '..', 'build-info.json'),
    JSON.stringify(record ?? { variant, cmakeFlags: cmakeFlags(variant) }),
  );
  return bin;
}

const choice = (variant: 'cpu' | 'cuda', forced = false): BuildChoice => ({
  variant,
  forced,
  reason: 'test',
  nvcc: undefined,
  gpus: 0,
});

describe('llama-server build variants (ORCH-1101)', () => {
  it('keeps the CPU cache path CI relies on, and gives CUDA its own entry', () => {
    expect(cachedBinaryPath('/c')).toBe('/c/llama-server/node-llama-cpp-3.22.1-v0.5.0-cpu/bin/llama-server');
    expect(cachedBinaryPath('/c', 'cuda')).toBe(
      '/c/llama-server/node-llama-cpp-3.22.1-v0.5.0-cuda/bin/llama-server',
    );
  });

  it('builds CPU with the flags of today and CUDA with GGML_CUDA=ON', () => {
    expect(cmakeFlags('cpu')).toEqual([...CMAKE_FLAGS]);
    expect(cmakeFlags('cpu').join(' ')).not.toMatch(/CUDA/);
    expect(cmakeFlags('cuda', { nvcc: '/opt/cuda/bin/nvcc', nativeArchitectures: true })).toEqual([
      ...CMAKE_FLAGS,
      '-DGGML_CUDA=ON',
      '-DCMAKE_CUDA_COMPILER=/opt/cuda/bin/nvcc',
      '-DCMAKE_CUDA_ARCHITECTURES=native',
    ]);
    // Without a GPU at build time `native` is invalid: the source's default architecture list serves.
    expect(cmakeFlags('cuda')).toEqual([...CMAKE_FLAGS, '-DGGML_CUDA=ON']);
  });

  it('detects CUDA from an nvcc (PATH or a toolkit root) plus a GPU, else chooses CPU', async () => {
    const root = await mkdtemp(join(tmpdir(), 'prov-cuda-'));
    await fakeBinary(join(root, 'path'), 'nvcc');
    await fakeBinary(join(root, 'toolkit', 'bin'), 'nvcc');
    const onPath = { PATH: join(root, 'path') };
    const none = { PATH: join(root, 'empty') };
    const gpus = (n: number) => () => n;

    const cuda = await chooseLlamaBuild({ env: onPath, cudaRoots: [], gpuCount: gpus(2) });
    expect(cuda).toMatchObject({ variant: 'cuda', forced: false, nvcc: join(root, 'path', 'nvcc'), gpus: 2 });
    expect(
      await chooseLlamaBuild({ env: none, cudaRoots: [join(root, 'toolkit')], gpuCount: gpus(1) }),
    ).toMatchObject({ variant: 'cuda', nvcc: join(root, 'toolkit', 'bin', 'nvcc') });
    expect(await findNvcc({ CUDA_HOME: join(root, 'toolkit'), PATH: '' })).toBe(
      join(root, 'toolkit', 'bin', 'nvcc'),
    );

    const noGpu = await chooseLlamaBuild({ env: onPath, cudaRoots: [], gpuCount: gpus(0) });
    expect(noGpu).toMatchObject({ variant: 'cpu', forced: false });
    expect(noGpu.reason).toMatch(/nvidia-smi reports no GPU/);
    const noNvcc = await chooseLlamaBuild({ env: none, cudaRoots: [], gpuCount: gpus(4) });
    expect(noNvcc).toMatchObject({ variant: 'cpu', forced: false });
    expect(noNvcc.reason).toMatch(/no nvcc/);
    expect(
      await chooseLlamaBuild({ env: onPath, cudaRoots: [], gpuCount: gpus(2), cpuPool: true }),
    ).toMatchObject({ variant: 'cpu', reason: 'the pool runs on CPU' });
  });

  it('forces a build from the config field, else from LLORCH_LLAMA_BUILD', async () => {
    const root = await mkdtemp(join(tmpdir(), 'prov-force-'));
    await fakeBinary(join(root, 'path'), 'nvcc');
    const env = { PATH: join(root, 'path') };
    const gpu = () => 1;
    expect(
      await chooseLlamaBuild({ env: { ...env, LLORCH_LLAMA_BUILD: 'cpu' }, cudaRoots: [], gpuCount: gpu }),
    ).toMatchObject({ variant: 'cpu', forced: true, reason: 'forced by LLORCH_LLAMA_BUILD=cpu' });
    expect(
      await chooseLlamaBuild({ setting: 'cuda', env: { PATH: '' }, cudaRoots: [], gpuCount: () => 0 }),
    ).toMatchObject({ variant: 'cuda', forced: true, reason: 'forced by engines.llama_build: cuda' });
    // The config field wins over the environment; `auto` leaves the choice to it.
    expect(
      await chooseLlamaBuild({
        setting: 'cpu',
        env: { ...env, LLORCH_LLAMA_BUILD: 'cuda' },
        cudaRoots: [],
        gpuCount: gpu,
      }),
    ).toMatchObject({ variant: 'cpu', forced: true });
    expect(
      await chooseLlamaBuild({
        setting: 'auto',
        env: { PATH: '', LLORCH_LLAMA_BUILD: 'cuda' },
        cudaRoots: [],
        gpuCount: () => 0,
      }),
    ).toMatchObject({ variant: 'cuda', forced: true });
    await expect(
      chooseLlamaBuild({ env: { LLORCH_LLAMA_BUILD: 'rocm' }, cudaRoots: [], gpuCount: gpu }),
    ).rejects.toThrow(/LLORCH_LLAMA_BUILD: 'rocm' is not a llama-server build/);
  });

  it('records the variant next to the cached binary and reads it back', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'prov-info-'));
    expect(await buildOf(await cachedBuild(cacheDir, 'cuda'))).toBe('cuda');
    // Records written before variants existed list only the flags (a CPU build).
    expect(await buildOf(await cachedBuild(cacheDir, 'cpu', { cmakeFlags: [...CMAKE_FLAGS] }))).toBe('cpu');
    expect(await buildOf(await fakeBinary(join(cacheDir, 'elsewhere')))).toBe('unknown');
  });

  it('serves the cached build of the chosen variant, and says where the binary came from', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'prov-pick-'));
    const cpu = await cachedBuild(cacheDir, 'cpu');
    const cuda = await cachedBuild(cacheDir, 'cuda');
    const env = { PATH: '' };
    expect(await provisionLlamaServer({ cacheDir, env, choice: choice('cuda') })).toEqual({
      path: cuda,
      build: 'cuda',
      origin: 'cache',
      reason: 'test',
    });
    expect(await provisionLlamaServer({ cacheDir, env, choice: choice('cpu') })).toEqual({
      path: cpu,
      build: 'cpu',
      origin: 'cache',
      reason: 'test',
    });
    expect(await provisionLlamaServer({ cacheDir, env, explicitPath: cpu, choice: choice('cuda') })).toEqual({
      path: cpu,
      build: 'cpu',
      origin: 'configured',
    });
  });

  it('in dev an unforced choice falls back to the other cached build; a forced one never does', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'prov-dev-'));
    const cpu = await cachedBuild(cacheDir, 'cpu');
    const env = { PATH: '' };
    const notes: string[] = [];
    const served = await provisionLlamaServer({
      cacheDir,
      env,
      choice: choice('cuda'),
      preferCached: true,
      onProgress: (l) => notes.push(l),
    });
    expect(served).toEqual({
      path: cpu,
      build: 'cpu',
      origin: 'cache',
      reason: 'dev profile: cached (test)',
    });
    expect(notes.join('\n')).toMatch(/cached cpu build serves \(dev profile\); set LLORCH_LLAMA_BUILD=cuda/);
    await expect(
      provisionLlamaServer({ cacheDir, env, choice: choice('cuda', true), preferCached: true, build: false }),
    ).rejects.toThrow(/building is disabled/);
    await expect(
      provisionLlamaServer({ cacheDir, env, choice: choice('cuda'), build: false }),
    ).rejects.toThrow(/building is disabled/);
  });

  it('refuses a CUDA build without a CUDA compiler before fetching anything', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'prov-nonvcc-'));
    await expect(
      provisionLlamaServer({ cacheDir, env: { PATH: '' }, choice: choice('cuda', true) }),
    ).rejects.toThrow(/needs the CUDA toolkit: no nvcc/);
  });

  it('finds any cached build when no variant is asked for (CPU first)', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'prov-any-'));
    const cuda = await cachedBuild(cacheDir, 'cuda');
    expect(await findLlamaServer({ cacheDir, env: { PATH: '' } })).toBe(cuda);
    expect(await findLlamaServer({ cacheDir, env: { PATH: '' }, variant: 'cpu' })).toBeUndefined();
    const cpu = await cachedBuild(cacheDir, 'cpu');
    expect(await findLlamaServer({ cacheDir, env: { PATH: '' } })).toBe(cpu);
  });
});

describe('engines.llama_build', () => {
  const raw = (engines: object) => ({
    profile: 'dev',
    engines,
    pools: [{ id: 'p', engine: 'llamacpp', model: { id: 'p', path: '/m.gguf' }, ctx: 256, devices: 'cpu' }],
  });
  it('defaults to auto and takes cpu or cuda', () => {
    expect(validateConfig(raw({}), { env: {} }).config.engines.llamaBuild).toBe('auto');
    expect(validateConfig(raw({ llama_build: 'cuda' }), { env: {} }).config.engines.llamaBuild).toBe('cuda');
    expect(() => validateConfig(raw({ llama_build: 'rocm' }), { env: {} })).toThrow(/llama_build/);
  });

  it('refuses an LLORCH_LLAMA_BUILD it cannot honour, by name', () => {
    expect(() => validateConfig(raw({}), { env: { LLORCH_LLAMA_BUILD: 'gpu' } })).toThrow(
      /LLORCH_LLAMA_BUILD: 'gpu' is not a llama-server build \(cpu, cuda or auto\)/,
    );
    expect(validateConfig(raw({}), { env: { LLORCH_LLAMA_BUILD: 'cuda' } }).config.engines.llamaBuild).toBe(
      'auto',
    );
  });
});
