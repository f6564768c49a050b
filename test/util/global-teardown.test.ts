/**
 * The global teardown that fails a run leaving processes behind (test/support/global-teardown.ts).
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TEST_RUN_ENV, processesMarked } from '../support/global-teardown.js';

const run = promisify(execFile);

describe.skipIf(process.platform !== 'linux')('global teardown: processes left behind', () => {
  it('finds a process by the marker it inherited, with its pid and command line, until it exits', async () => {
    const marker = randomUUID();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      env: { ...process.env, [TEST_RUN_ENV]: marker },
      stdio: 'ignore',
    });
    await once(child, 'spawn');
    const found = processesMarked(TEST_RUN_ENV, marker, -1);
    expect(found).toEqual([
      { pid: child.pid, ppid: process.pid, cmdline: `${process.execPath} -e setInterval(() => {}, 1000)` },
    ]);
    // The direct children of the excepted process (vitest's own workers) are not counted.
    expect(processesMarked(TEST_RUN_ENV, marker, process.pid)).toEqual([]);
    // Another run's marker does not match.
    expect(processesMarked(TEST_RUN_ENV, randomUUID(), -1)).toEqual([]);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(processesMarked(TEST_RUN_ENV, marker, -1)).toEqual([]);
  });

  it('a suite that leaves a process running fails, names it, and the process is ended', async () => {
    // Without the outer marker the inner run judges its own processes.
    const env = { ...process.env };
    delete env[TEST_RUN_ENV];
    const result = await run(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/util/fixtures/leaky-suite.config.ts'],
      { env, timeout: 120_000 },
    ).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({
        code: err.code ?? -1,
        out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
      }),
    );
    expect(result.code, result.out).toBe(1);
    expect(result.out).toMatch(/1 process\(es\) started by tests were still running after the suite ended/);
    const line = /pid (\d+) \(parent \d+\): .*leaky-suite-survivor/.exec(result.out);
    expect(line, result.out).not.toBeNull();
    const pid = Number(line?.[1]);
    // Ended with SIGKILL before the run exited; only the reaping by init may still be pending.
    const alive = () => {
      try {
        process.kill(pid, 0);
        return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(false);
  });
});
