/**
 * No engine outlives its supervisor (SPEC §5, §17): engines are stopped as a process group, so
 * their own workers end with them, and an engine whose supervisor is killed with SIGKILL ends too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineProcess } from '../../src/pool/engine-process.js';
import { classifyFailure } from '../../src/pool/failure-class.js';
import { createLogger } from '../../src/util/logger.js';
import { until } from '../support/harness.js';
import { ENGINE_SCRIPT, familyPids } from './fixtures/engine-family.js';

const run = promisify(execFile);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

/** Every pid the tests saw, killed at the end whatever happened, so a failure leaves nothing. */
const seen = new Set<number>();
const parents: ChildProcess[] = [];
afterEach(() => {
  for (const p of parents.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const pid of seen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  seen.clear();
});

function startEngine(mode: 'idle' | 'exit3'): EngineProcess {
  const proc = new EngineProcess({
    binary: process.execPath,
    args: ['-e', ENGINE_SCRIPT, mode],
    env: process.env,
    logger: createLogger({ level: 'silent' }),
  });
  if (proc.pid !== undefined) seen.add(proc.pid);
  return proc;
}

async function family(proc: EngineProcess): Promise<{ engine: number; worker: number }> {
  await until(() => familyPids(proc.output()) !== undefined, 90_000);
  const pids = familyPids(proc.output());
  if (pids === undefined) throw new Error('engine printed no pids');
  seen.add(pids.engine);
  seen.add(pids.worker);
  return pids;
}

describe('engines run in their own process group', () => {
  it('a normal stop takes the engine and a worker that ignores SIGTERM with it', async () => {
    const proc = startEngine('idle');
    const { engine, worker } = await family(proc);
    expect(alive(engine) && alive(worker)).toBe(true);
    const exit = await proc.stop(1_000);
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    await until(() => !alive(engine) && !alive(worker), 90_000);
  });

  it('the engine does not share the supervisor’s process group (no terminal Ctrl-C)', async () => {
    const proc = startEngine('idle');
    const { engine } = await family(proc);
    const pgid = async (pid: number) =>
      Number((await run('ps', ['-o', 'pgid=', '-p', String(pid)])).stdout.trim());
    expect(await pgid(engine)).toBe(proc.pid);
    expect(await pgid(process.pid)).not.toBe(proc.pid);
    await proc.stop(1_000);
  });

  it('a crash is reported with the engine’s own exit code, and its leftover worker is reaped', async () => {
    const proc = startEngine('exit3');
    const { worker } = await family(proc);
    expect(await proc.exited).toEqual({ code: 3, signal: null });
    await until(() => !alive(worker), 90_000);
  });

  it('an engine killed by a signal is reported as killed by that signal (SIGKILL: host OOM)', async () => {
    const proc = startEngine('idle');
    const { engine, worker } = await family(proc);
    // Only the engine, as the kernel's OOM killer would.
    process.kill(engine, 'SIGKILL');
    const exit = await proc.exited;
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(classifyFailure(exit, proc.output()).kind).toBe('host_oom');
    await until(() => !alive(worker), 90_000);
  });
});

describe('kill -9 of the supervisor', () => {
  it('ends its engines and their workers', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/orphan-parent.ts', import.meta.url));
    const parent = spawn(process.execPath, ['--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    parents.push(parent);
    let out = '';
    parent.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    parent.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    await until(() => /pids \d+ \d+ \d+/.test(out), 90_000).catch(() => {
      throw new Error(`the parent printed no pids:\n${out}`);
    });
    const pids = (/pids (\d+) (\d+) (\d+)/.exec(out) ?? []).slice(1).map(Number);
    for (const pid of pids) seen.add(pid);
    expect(pids.every(alive)).toBe(true);
    parent.kill('SIGKILL');
    await until(() => !pids.some(alive), 90_000);
  });
});
