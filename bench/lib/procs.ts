/** Child processes of benchmarks: start, wait until serving, measure (Linux /proc), stop. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { RawConfig, RawPool } from '../../src/config/schema.js';

const TICK_S = 0.01; // USER_HZ is 100 on Linux

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_S;
}

/** Resident set size in bytes (current and peak). */
export function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers (any HTTP status) or the timeout passes. */
export async function waitHttp(url: string, timeoutMs = 30_000, init?: RequestInit): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await (await fetch(url, init)).arrayBuffer();
      return;
    } catch {
      if (Date.now() > end) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

function handle(child: ChildProcess): Proc {
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    pid: child.pid ?? -1,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-(child.pid ?? 0), 'SIGTERM'); // the whole process group
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid ?? 0), 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A command in its own process group (so stop() takes its children too). */
export function start(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  child.stderr?.on('data', () => undefined);
  return handle(child);
}

/** A TypeScript module run under tsx with an IPC channel; resolves with its first message. */
export async function forkTs<T>(module: string, payload: unknown): Promise<{ proc: Proc; ready: T }> {
  // BENCH_CPU_PROF=DIR: the child writes a V8 CPU profile there on exit (flame graphs).
  const prof = process.env['BENCH_CPU_PROF'];
  const child = fork(module, [], {
    execArgv: ['--import', 'tsx', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])],
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) =>
      reject(new Error(`${module} exited with ${code ?? 'a signal'} before it was ready`)),
    );
    child.send(payload as object);
  });
  return { proc: handle(child), ready };
}

/** What the orchestrator child answers once it serves: its URL and every replica's engine URL. */
export interface BenchOrchestrator {
  readonly url: string;
  readonly replicas: Record<string, string[]>;
}

/**
 * A llama-orch orchestrator for a benchmark, in its own process (loopback, dev profile, a fresh
 * data directory): one pool, plus any top-level settings in `extra`.
 */
export async function startBenchOrchestrator(
  name: string,
  pool: RawPool,
  extra: Partial<Omit<RawConfig, 'pools'>> = {},
): Promise<{ proc: Proc; ready: BenchOrchestrator }> {
  const config: RawConfig = {
    profile: 'dev',
    listen: { host: '127.0.0.1', port: 0 },
    logging: { level: 'info' },
    data_dir: `/tmp/llorch-bench-${name}-${process.pid}`,
    ...extra,
    pools: [pool],
  };
  return forkTs<BenchOrchestrator>(new URL('./orchestrator-child.ts', import.meta.url).pathname, config);
}
