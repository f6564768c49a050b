/**
 * Where `llama-server` comes from (issue: "a real engine"): the operator's binary (configured path
 * or PATH) or, when absent, a build from the llama.cpp source pinned inside the `node-llama-cpp`
 * npm package (a git bundle), built once and cached outside the repository. A host with the CUDA
 * toolkit and a GPU gets a CUDA build (its own cache entry, `...-cuda`), any other host a CPU
 * build (`...-cpu`); `engines.llama_build` / `LLORCH_LLAMA_BUILD` force one (SPEC ORCH-1101).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const LLAMA_CPP_PIN = {
  npmPackage: 'node-llama-cpp',
  version: '3.22.1',
  integrity:
    'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==',
  tag: 'v0.5.0',
} as const;

/** Flags of every build; the CPU build uses exactly these. */
export const CMAKE_FLAGS = [
  '-G',
  'Ninja',
  '-DCMAKE_BUILD_TYPE=Release',
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DGGML_NATIVE=OFF',
] as const;

/** The two builds this module makes from the pinned source. */
export type LlamaBuild = 'cpu' | 'cuda';
/** `auto`: CUDA when the host has the CUDA toolkit and a GPU, else CPU. */
export type LlamaBuildSetting = LlamaBuild | 'auto';

/** The environment variable that forces a build when the config says `auto` (or nothing). */
export const BUILD_ENV = 'LLORCH_LLAMA_BUILD';

/**
 * CUDA options of the pinned source (llama.cpp v0.5.0 as bundled by node-llama-cpp 3.22.1):
 * `option(GGML_CUDA "ggml: use CUDA" OFF)` in ggml/CMakeLists.txt (LLAMA_CUBLAS / LLAMA_CUDA are
 * deprecated aliases in CMakeLists.txt). ggml/src/ggml-cuda/CMakeLists.txt keeps a given
 * `CMAKE_CUDA_ARCHITECTURES`; `native` there means "the GPUs present at build time" and is only
 * valid when a GPU is present, so a build without one compiles its default architecture list.
 */
export function cmakeFlags(
  build: LlamaBuild,
  cuda: { readonly nvcc?: string | undefined; readonly nativeArchitectures?: boolean } = {},
): string[] {
  if (build === 'cpu') return [...CMAKE_FLAGS];
  const flags = [...CMAKE_FLAGS, '-DGGML_CUDA=ON'];
  if (cuda.nvcc !== undefined) flags.push(`-DCMAKE_CUDA_COMPILER=${cuda.nvcc}`);
  if (cuda.nativeArchitectures === true) flags.push('-DCMAKE_CUDA_ARCHITECTURES=native');
  return flags;
}

export interface ProvisionOptions {
  /** Configured binary: a path (with `/`) or a bare name looked up on PATH. */
  readonly explicitPath?: string | undefined;
  readonly cacheDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly onProgress?: (line: string) => void;
  /** Build from the pinned source when nothing is found. Default true. */
  readonly build?: boolean;
  /**
   * Which cached build to find or make. Finding without one accepts any cached build (CPU
   * first); building without one makes the CPU build.
   */
  readonly variant?: LlamaBuild | undefined;
  /** The CUDA compiler for a CUDA build (else `nvcc` on PATH). */
  readonly nvcc?: string | undefined;
  /** Compile CUDA kernels for the GPUs present (`CMAKE_CUDA_ARCHITECTURES=native`). */
  readonly nativeCudaArchitectures?: boolean;
}

/** `$XDG_CACHE_HOME/llama-orch` when absolute, else `~/.cache/llama-orch`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env['XDG_CACHE_HOME'];
  return xdg !== undefined && xdg !== '' && isAbsolute(xdg)
    ? join(xdg, 'llama-orch')
    : join(home, '.cache', 'llama-orch');
}

/** Where a build of the pinned version is cached (the CPU path is what CI caches: keep it). */
export function cachedBinaryPath(cacheDir: string, variant: LlamaBuild = 'cpu'): string {
  return join(
    cacheDir,
    'llama-server',
    `${LLAMA_CPP_PIN.npmPackage}-${LLAMA_CPP_PIN.version}-${LLAMA_CPP_PIN.tag}-${variant}`,
    'bin',
    'llama-server',
  );
}

/** The record written next to a cached build (`<entry>/build-info.json`). */
export interface BuildInfo {
  readonly variant: LlamaBuild;
  readonly cmakeFlags: readonly string[];
}

/**
 * The build of a binary this module made, from the record next to it; `unknown` for binaries it
 * did not make (PATH, configured). Records written before variants existed are CPU builds.
 */
export async function buildOf(binary: string): Promise<LlamaBuild | 'unknown'> {
  try {
    const info = JSON.parse(await readFile(join(binary, '..', '..', 'build-info.json'), 'utf8')) as Partial<
      BuildInfo & { cmakeFlags: unknown }
    >;
    if (info.variant === 'cpu' || info.variant === 'cuda') return info.variant;
    if (!Array.isArray(info.cmakeFlags)) return 'unknown';
    return info.cmakeFlags.includes('-DGGML_CUDA=ON') ? 'cuda' : 'cpu';
  } catch {
    return 'unknown';
  }
}

/** A build setting from config or the environment; anything else is an error naming `where`. */
export function parseBuildSetting(value: string | undefined, where: string): LlamaBuildSetting | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'auto' || value === 'cpu' || value === 'cuda') return value;
  throw new Error(`${where}: '${value}' is not a llama-server build (cpu, cuda or auto)`);
}

/** Default CUDA toolkit locations searched after PATH. */
export function defaultCudaRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const roots = [env['CUDA_HOME'], env['CUDA_PATH'], '/usr/local/cuda'];
  return roots.filter((r): r is string => r !== undefined && r !== '' && isAbsolute(r));
}

/** `nvcc` on PATH, else under `<root>/bin` of a CUDA toolkit root; undefined when none. */
export async function findNvcc(
  env: NodeJS.ProcessEnv = process.env,
  cudaRoots: readonly string[] = defaultCudaRoots(env),
): Promise<string | undefined> {
  const fromPath = await onPath('nvcc', env);
  if (fromPath !== undefined) return fromPath;
  for (const root of cudaRoots) {
    const candidate = join(root, 'bin', 'nvcc');
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export interface BuildChoice {
  readonly variant: LlamaBuild;
  /** Forced by config or environment (not detected). */
  readonly forced: boolean;
  /** Why this build, for the operator's log. */
  readonly reason: string;
  readonly nvcc: string | undefined;
  /** GPUs nvidia-smi answered; a CUDA build compiles for exactly these when there are any. */
  readonly gpus: number;
}

export interface BuildDetection {
  /** `engines.llama_build`; `auto` or absent lets `LLORCH_LLAMA_BUILD` decide, then detection. */
  readonly setting?: LlamaBuildSetting | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** GPUs the host's nvidia-smi answers with (0 when it fails or is missing). */
  readonly gpuCount: () => number | Promise<number>;
  /** CUDA toolkit roots searched for `bin/nvcc` after PATH. */
  readonly cudaRoots?: readonly string[];
  /** The pool runs on CPU (`devices: cpu`): it needs no CUDA build unless one is forced. */
  readonly cpuPool?: boolean;
}

/**
 * Which build this host gets: a forced one (config, then `LLORCH_LLAMA_BUILD`), else CUDA when
 * an `nvcc` is found (PATH or a CUDA root) and nvidia-smi answers with a GPU, else CPU.
 */
export async function chooseLlamaBuild(d: BuildDetection): Promise<BuildChoice> {
  const env = d.env ?? process.env;
  const configured = d.setting === 'auto' ? undefined : d.setting;
  const forced = configured ?? parseBuildSetting(env[BUILD_ENV], BUILD_ENV);
  const nvcc = await findNvcc(env, d.cudaRoots ?? defaultCudaRoots(env));
  const gpus = await d.gpuCount();
  if (forced !== undefined && forced !== 'auto') {
    const by = configured !== undefined ? `engines.llama_build: ${configured}` : `${BUILD_ENV}=${forced}`;
    return { variant: forced, forced: true, reason: `forced by ${by}`, nvcc, gpus };
  }
  if (d.cpuPool === true)
    return { variant: 'cpu', forced: false, reason: 'the pool runs on CPU', nvcc, gpus };
  if (nvcc === undefined)
    return { variant: 'cpu', forced: false, reason: 'no nvcc on PATH or in a CUDA toolkit root', nvcc, gpus };
  if (gpus === 0)
    return {
      variant: 'cpu',
      forced: false,
      reason: `nvcc at ${nvcc}, but nvidia-smi reports no GPU`,
      nvcc,
      gpus,
    };
  return {
    variant: 'cuda',
    forced: false,
    reason: `nvcc at ${nvcc} and ${gpus} GPU(s) from nvidia-smi`,
    nvcc,
    gpus,
  };
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function onPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The configured binary, else `llama-server` on PATH, else the cached build; undefined if none. */
export async function findLlamaServer(opts: ProvisionOptions): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  if (opts.explicitPath !== undefined) {
    const p = opts.explicitPath;
    const found = p.includes('/') ? ((await isExecutable(p)) ? p : undefined) : await onPath(p, env);
    if (found === undefined)
      throw new Error(
        `configured llama-server '${p}' is not an executable file${p.includes('/') ? '' : ' on PATH'}`,
      );
    return found;
  }
  const fromPath = await onPath('llama-server', env);
  if (fromPath !== undefined) return fromPath;
  for (const variant of opts.variant === undefined ? (['cpu', 'cuda'] as const) : [opts.variant]) {
    const cached = cachedBinaryPath(opts.cacheDir, variant);
    if (await isExecutable(cached)) return cached;
  }
  return undefined;
}

/** A provisioned llama-server and where it came from, for the operator's log. */
export interface LlamaServerBinary {
  readonly path: string;
  readonly build: LlamaBuild | 'unknown';
  readonly origin: 'configured' | 'path' | 'cache' | 'built';
  /** Why this build (cache and built origins): the build choice's reason. */
  readonly reason?: string;
}

/**
 * The llama-server of a pool: the configured binary, else PATH, else the cached build of
 * `choice`, built when missing. With `preferCached` (the dev profile) and a build that was not
 * forced, a cached build of the other variant serves instead of starting a long build.
 */
export async function provisionLlamaServer(
  opts: Omit<ProvisionOptions, 'variant'> & { readonly choice: BuildChoice; readonly preferCached?: boolean },
): Promise<LlamaServerBinary> {
  const env = opts.env ?? process.env;
  if (opts.explicitPath !== undefined) {
    const path = await findLlamaServer({ ...opts, variant: opts.choice.variant });
    if (path !== undefined) return { path, build: await buildOf(path), origin: 'configured' };
  }
  const fromPath = await onPath('llama-server', env);
  if (fromPath !== undefined) return { path: fromPath, build: await buildOf(fromPath), origin: 'path' };
  const { variant } = opts.choice;
  const wanted = cachedBinaryPath(opts.cacheDir, variant);
  const reason = opts.choice.reason;
  if (await isExecutable(wanted)) return { path: wanted, build: variant, origin: 'cache', reason };
  if (opts.preferCached === true && !opts.choice.forced) {
    const other: LlamaBuild = variant === 'cpu' ? 'cuda' : 'cpu';
    const cached = cachedBinaryPath(opts.cacheDir, other);
    if (await isExecutable(cached)) {
      opts.onProgress?.(
        `a ${variant} build was chosen (${opts.choice.reason}), but the cached ${other} build serves ` +
          `(dev profile); set ${BUILD_ENV}=${variant} to build it`,
      );
      return { path: cached, build: other, origin: 'cache', reason: `dev profile: cached (${reason})` };
    }
  }
  if (opts.build === false)
    throw new Error(`llama-server not found (PATH, configured path or cache) and building is disabled`);
  opts.onProgress?.(`building the ${variant} llama-server: ${opts.choice.reason}`);
  const path = await buildPinned({
    ...opts,
    variant,
    nvcc: opts.choice.nvcc,
    nativeCudaArchitectures: opts.choice.gpus > 0,
  });
  return { path, build: variant, origin: 'built', reason };
}

/** `llama-server --version` → `b<build>-<commit>`, the form `/props` reports as `build_info`. */
export async function llamaServerVersion(binary: string): Promise<string> {
  const { stdout, stderr } = await execFileP(binary, ['--version'], { timeout: 10_000 });
  return parseVersion(`${stdout}\n${stderr}`);
}

export function parseVersion(text: string): string {
  const m = /build (\d+), commit ([0-9a-f]+)/.exec(text) ?? /version: (\d+) \(([0-9a-f]+)\)/.exec(text);
  return m ? `b${m[1]}-${m[2]}` : 'unknown';
}

/** Finds llama-server, building the pinned version into the cache when none is found. */
export async function ensureLlamaServer(opts: ProvisionOptions): Promise<string> {
  const found = await findLlamaServer(opts);
  if (found !== undefined) return found;
  if (opts.build === false)
    throw new Error('llama-server not found (PATH, configured path or cache) and building is disabled');
  return buildPinned(opts);
}

async function run(
  cmd: string,
  args: readonly string[],
  cwd: string,
  progress: (l: string) => void,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (b: Buffer) => {
      const text = b.toString('utf8');
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (/^\[\d+\/\d+\]/.test(line)) progress(line.slice(0, 160));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? new Error(
              `'${cmd}' is required to build llama-server (install: apt-get install ${cmd === 'ninja' ? 'ninja-build' : cmd === 'g++' ? 'build-essential' : cmd})`,
            )
          : err,
      ),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${cmd} ${args.join(' ')} failed with code ${code}:\n${tail}`)),
    );
  });
}

async function withLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  progress: (l: string) => void,
): Promise<T> {
  await mkdir(join(lockPath, '..'), { recursive: true });
  for (let waited = 0; ; waited += 2000) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await readFile(lockPath, 'utf8').catch(() => '0'));
      let alive: boolean;
      try {
        alive = pid > 0 && process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) {
        await rm(lockPath, { force: true });
        continue;
      }
      if (waited % 30_000 === 0) progress(`waiting for another llama-server build (pid ${pid})`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function buildPinned(opts: ProvisionOptions): Promise<string> {
  const progress = opts.onProgress ?? (() => undefined);
  const variant = opts.variant ?? 'cpu';
  if (
    variant === 'cuda' &&
    opts.nvcc === undefined &&
    (await onPath('nvcc', opts.env ?? process.env)) === undefined
  )
    throw new Error(
      `a CUDA llama-server build needs the CUDA toolkit: no nvcc on PATH or under ${defaultCudaRoots(opts.env).join(', ')}/bin`,
    );
  const flags = cmakeFlags(variant, {
    nvcc: opts.nvcc,
    nativeArchitectures: opts.nativeCudaArchitectures ?? false,
  });
  const target = cachedBinaryPath(opts.cacheDir, variant);
  const installDir = join(target, '..', '..');
  return withLock(
    `${installDir}.lock`,
    async () => {
      if (await isExecutable(target)) return target;
      const started = Date.now();
      const work = await mkdtemp(join(opts.cacheDir, 'build-'));
      try {
        progress(
          `fetching ${LLAMA_CPP_PIN.npmPackage}@${LLAMA_CPP_PIN.version} (pinned llama.cpp ${LLAMA_CPP_PIN.tag})`,
        );
        await run(
          'npm',
          ['pack', `${LLAMA_CPP_PIN.npmPackage}@${LLAMA_CPP_PIN.version}`, '--silent'],
          work,
          progress,
        );
        const tarball = join(work, `${LLAMA_CPP_PIN.npmPackage}-${LLAMA_CPP_PIN.version}.tgz`);
        const digest = `sha512-${createHash('sha512')
          .update(await readFile(tarball))
          .digest('base64')}`;
        if (digest !== LLAMA_CPP_PIN.integrity)
          throw new Error(`integrity mismatch for ${tarball}: ${digest}`);
        await run(
          'tar',
          ['xzf', tarball, 'package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json'],
          work,
          progress,
        );
        await run(
          'git',
          ['clone', '--quiet', 'package/llama/gitRelease.bundle', 'llama.cpp'],
          work,
          progress,
        );
        const src = join(work, 'llama.cpp');
        const build = join(src, 'build');
        await mkdir(build);
        progress(`configuring the ${variant} build (cmake)`);
        await run('cmake', [...flags, '..'], build, progress);
        progress(
          `building llama-server (${variant}) with ${availableParallelism()} jobs ` +
            (variant === 'cpu'
              ? '(about 9 minutes on 2 cores)'
              : '(CUDA kernels take much longer than the CPU build)'),
        );
        await run(
          'cmake',
          ['--build', '.', '--target', 'llama-server', `-j${availableParallelism()}`],
          build,
          progress,
        );
        const staged = join(work, 'install');
        await mkdir(join(staged, 'bin'), { recursive: true });
        await rename(join(build, 'bin', 'llama-server'), join(staged, 'bin', 'llama-server'));
        await writeFile(
          join(staged, 'build-info.json'),
          `${JSON.stringify({ pin: LLAMA_CPP_PIN, variant, cmakeFlags: flags, seconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
        );
        await mkdir(join(installDir, '..'), { recursive: true });
        await rm(installDir, { recursive: true, force: true });
        await rename(staged, installDir);
        progress(`installed ${target}`);
        return target;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    progress,
  );
}
