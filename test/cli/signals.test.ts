/**
 * The daemons' signal handling (`src/cli/signals.ts`, SPEC §17 §5) on a real process whose
 * graceful stop hangs: the hard timer ends it after `drain + bound` with exit 1, a second signal
 * ends it at once (128 + signal number), and either way its engine process group is killed
 * first — even an engine that ignores SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/harness.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/stuck-daemon.ts', import.meta.url));

const alive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Stuck {
  readonly child: ChildProcess;
  readonly engineGroup: number;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const started: ChildProcess[] = [];
const groups: number[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const g of groups.splice(0)) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

async function stuckDaemon(drainMs: number, boundMs: number): Promise<Stuck> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, String(drainMs), String(boundMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await until(() => /engine \d+/.test(out), 90_000).catch(() => {
    throw new Error(`the fixture did not start its engine:\n${out}`);
  });
  const engineGroup = Number(/engine (\d+)/.exec(out)?.[1]);
  groups.push(engineGroup);
  return { child, engineGroup, exit, output: () => out };
}

describe('a daemon whose graceful stop hangs', () => {
  it('is ended by the hard timer (exit 1) after drain + bound, its engine group killed', async () => {
    const d = await stuckDaemon(200, 300);
    expect(alive(d.engineGroup)).toBe(true);
    d.child.kill('SIGTERM');
    expect(await d.exit).toEqual({ code: 1, signal: null });
    expect(d.output()).toContain('"event":"shutdown.forced"');
    expect(d.output()).toContain('"hard_deadline_ms":500');
    await until(() => !alive(d.engineGroup), 90_000);
  });

  it('is ended at once by a second SIGTERM (exit 143) or SIGINT (exit 130), its engine group killed', async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      // The hard timer is ten minutes away: only the second signal can end it within the test.
      const d = await stuckDaemon(600_000, 0);
      d.child.kill(signal);
      await until(() => d.output().includes('"event":"shutdown"'), 90_000);
      d.child.kill(signal);
      expect(await d.exit).toEqual({ code, signal: null });
      expect(d.output()).toContain('"event":"shutdown.immediate"');
      await until(() => !alive(d.engineGroup), 90_000);
    }
  });
});
