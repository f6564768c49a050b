/**
 * Where `llama-server` comes from (issue: "a real engine"): the operator's binary (configured path
 * or PATH) or, when absent, a CPU build from the llama.cpp source pinned inside the
 * `node-llama-cpp` npm package (a git bundle), built once and cached outside the repository.
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

export interface ProvisionOptions {
  /** Configured binary: a path (with `/`) or a bare name looked up on PATH. */
  readonly explicitPath?: string | undefined;
  readonly cacheDir: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly onProgress?: (line: string) => void;
  /** Build from the pinned source when nothing is found. Default true. */
  readonly build?: boolean;
}

/** `$XDG_CACHE_HOME/llama-orch` when absolute, else `~/.cache/llama-orch`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const xdg = env['XDG_CACHE_HOME'];
  return xdg !== undefined && xdg !== '' && isAbsolute(xdg)
    ? join(xdg, 'llama-orch')
    : join(home, '.cache', 'llama-orch');
}

/** Where the pinned CPU build is cached. */
export function cachedBinaryPath(cacheDir: string): string {
  return join(
    cacheDir,
    'llama-server',
    `${LLAMA_CPP_PIN.npmPackage}-${LLAMA_CPP_PIN.version}-${LLAMA_CPP_PIN.tag}-cpu`,
    'bin',
    'llama-server',
  );
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
  const cached = cachedBinaryPath(opts.cacheDir);
  return (await isExecutable(cached)) ? cached : undefined;
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
  const target = cachedBinaryPath(opts.cacheDir);
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
        progress('configuring (cmake)');
        await run('cmake', [...CMAKE_FLAGS, '..'], build, progress);
        progress(`building llama-server with ${availableParallelism()} jobs (about 9 minutes on 2 cores)`);
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
          `${JSON.stringify({ pin: LLAMA_CPP_PIN, cmakeFlags: CMAKE_FLAGS, seconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`,
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
