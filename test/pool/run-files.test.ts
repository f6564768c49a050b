/**
 * Run files and the start-up sweep (SPEC §17 §5): a recorded engine group whose daemon is dead
 * is ended, one whose daemon lives is left alone, and a pid now used by another program (its
 * start time differs) is never signalled. Real processes, each the leader of its own group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineProcess } from '../../src/pool/engine-process.js';
import { processStartTime, reapOrphanEngines, type EngineRunRecord } from '../../src/pool/run-files.js';
import { createLogger } from '../../src/util/logger.js';
import { until } from '../support/harness.js';

const linux = existsSync('/proc/self/stat');
const logger = createLogger({ level: 'silent' });

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return processStartTime(pid) !== undefined;
  } catch {
    return false;
  }
};

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A process group standing in for an engine the last daemon left: a leader and a worker. */
async function orphanGroup(ignoreTerm = false): Promise<{ leader: ChildProcess; worker: number }> {
  const ignore = ignoreTerm ? 'process.on("SIGTERM", () => {});' : '';
  const workerScript = `${ignore} setInterval(() => {}, 1000);`;
  const script = `${ignore}
    const w = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(workerScript)}], { stdio: 'ignore' });
    console.log('worker ' + w.pid);
    setInterval(() => {}, 1000);`;
  const leader = spawn(process.execPath, ['-e', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  started.push(leader);
  let out = '';
  leader.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  await until(() => /worker \d+/.test(out), 90_000);
  return { leader, worker: Number(/worker (\d+)/.exec(out)?.[1]) };
}

function record(dir: string, leader: number, overrides: Partial<EngineRunRecord> = {}): string {
  const rec: EngineRunRecord = {
    version: 1,
    boot_id: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    // This process's pid with a start time it never had: a daemon that is gone.
    owner: { pid: process.pid, start: '1' },
    pgid: leader,
    leader_start: processStartTime(leader) ?? '',
    label: 'p-r0',
    cmdline: ['engine', '--api-key', 'secret'],
    created_ms: Date.now(),
    ...overrides,
  };
  const path = join(dir, `p-r0-${leader}.json`);
  writeFileSync(path, JSON.stringify(rec));
  return path;
}

describe.skipIf(!linux)('the start-up sweep of run files', () => {
  it('ends a group left by a dead daemon, workers included, and removes its file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader, worker } = await orphanGroup();
    const path = record(dir, leader.pid ?? 0);
    const reaped = await reapOrphanEngines(dir, { logger });
    expect(reaped).toHaveLength(1);
    expect(reaped[0]).toMatchObject({ pgid: leader.pid, label: 'p-r0', killed: false });
    expect(reaped[0]?.pids).toEqual(expect.arrayContaining([leader.pid, worker]));
    await until(() => !alive(worker) && !alive(leader.pid ?? 0), 90_000);
    expect(existsSync(path)).toBe(false);
  });

  it('a group that ignores SIGTERM is killed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader, worker } = await orphanGroup(true);
    record(dir, leader.pid ?? 0);
    const reaped = await reapOrphanEngines(dir, { logger, graceMs: 300 });
    expect(reaped[0]).toMatchObject({ killed: true });
    await until(() => !alive(worker) && !alive(leader.pid ?? 0), 90_000);
  });

  it('with the leader (watchdog) gone, the engine recorded with its start time still identifies the group', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader, worker } = await orphanGroup();
    const leaderPid = leader.pid ?? 0;
    const leaderStart = processStartTime(leaderPid) ?? '';
    record(dir, leaderPid, {
      leader_start: leaderStart,
      engine_pid: worker,
      engine_start: processStartTime(worker) ?? '',
    });
    process.kill(leaderPid, 'SIGKILL');
    await until(() => !alive(leaderPid), 90_000);
    expect(alive(worker)).toBe(true);
    const reaped = await reapOrphanEngines(dir, { logger });
    expect(reaped[0]?.pids).toEqual([worker]);
    await until(() => !alive(worker), 90_000);
  });

  it('never signals a pid that now belongs to another program (start time differs)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader, worker } = await orphanGroup();
    const path = record(dir, leader.pid ?? 0, { leader_start: '2' });
    expect(await reapOrphanEngines(dir, { logger })).toEqual([]);
    expect(alive(leader.pid ?? 0) && alive(worker)).toBe(true);
    expect(existsSync(path)).toBe(false);
  });

  it('leaves the engines of a daemon that still runs alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader, worker } = await orphanGroup();
    const path = record(dir, leader.pid ?? 0, {
      owner: { pid: process.pid, start: processStartTime(process.pid) ?? '' },
    });
    expect(await reapOrphanEngines(dir, { logger })).toEqual([]);
    expect(alive(leader.pid ?? 0) && alive(worker)).toBe(true);
    expect(existsSync(path)).toBe(true);
  });

  it('drops files from before a reboot and unreadable ones without signalling anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const { leader } = await orphanGroup();
    record(dir, leader.pid ?? 0, { boot_id: 'another-boot' });
    writeFileSync(join(dir, 'garbage.json'), '{not json');
    expect(await reapOrphanEngines(dir, { logger })).toEqual([]);
    expect(alive(leader.pid ?? 0)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe.skipIf(!linux)('an engine’s run file', () => {
  it('is written at spawn with the group, the engine pid and start times, without secrets, and removed at exit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-run-'));
    const proc = new EngineProcess({
      binary: process.execPath,
      // After `--`: the engine's own arguments, not node's.
      args: ['-e', 'setInterval(() => {}, 1000)', '--', '--api-key', 'top-secret'],
      env: process.env,
      logger,
      runDir: dir,
      label: 'pool-r3',
    });
    const pgid = proc.pid ?? 0;
    const path = join(dir, `pool-r3-${pgid}.json`);
    await until(() => existsSync(path) && readFileSync(path, 'utf8').includes('engine_pid'), 90_000);
    const rec = JSON.parse(readFileSync(path, 'utf8')) as EngineRunRecord;
    expect(rec).toMatchObject({ pgid, label: 'pool-r3', owner: { pid: process.pid } });
    expect(rec.leader_start).toBe(processStartTime(pgid));
    expect(rec.engine_start).toBe(processStartTime(rec.engine_pid ?? 0));
    expect(rec.cmdline).toContain('[redacted]');
    expect(JSON.stringify(rec)).not.toContain('top-secret');
    await proc.stop(1_000);
    expect(existsSync(path)).toBe(false);
  });
});
