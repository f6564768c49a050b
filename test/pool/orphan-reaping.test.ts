/**
 * No engine outlives its supervisor, even when the watchdog dies with it (SPEC §17 §5): a daemon
 * (`llorch serve`, `llorch pool-managerd`) is killed with SIGKILL together with its engines'
 * watchdogs, so its engines keep running; the next daemon on the same data_dir finds them through
 * their run files, ends them before starting its own, logs what it reaped, and its own engines
 * come up. Real processes throughout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { EngineRunRecord } from '../../src/pool/run-files.js';
import { simPool, until } from '../support/harness.js';

const CLI = 'dist/src/cli/llorch.js';
const linux = existsSync('/proc/self/stat');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purposes (its parent has not collected it yet).
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

interface Daemon {
  readonly child: ChildProcess;
  output: string;
}

const daemons: Daemon[] = [];
const pids = new Set<number>();
afterEach(() => {
  for (const d of daemons.splice(0))
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
});

type Kind = 'serve' | 'pool-managerd';

async function configFile(kind: Kind, dir: string): Promise<string> {
  const pool = simPool('orph', 'vllm', {
    replicas: 2,
    launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 1_000 } },
  });
  const base = { profile: 'dev', data_dir: join(dir, 'data'), pools: [pool] };
  const config =
    kind === 'serve'
      ? { ...base, listen: { host: '127.0.0.1', port: 0 } }
      : // Nobody listens there: the node keeps trying to register; its engines run regardless.
        { ...base, node: { id: 'orph-node', orchestrator_url: 'http://127.0.0.1:9', heartbeat_ms: 200 } };
  const file = join(dir, `${kind}.yaml`);
  await writeFile(file, stringify(config));
  return file;
}

function start(kind: Kind, file: string): Daemon {
  const child = spawn(process.execPath, [CLI, kind, '--config', file], {
    env: { ...process.env, LLORCH_NODE_CREDENTIAL: 'orphan-test-credential' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const d: Daemon = { child, output: '' };
  child.stdout?.on('data', (b: Buffer) => (d.output += b.toString('utf8')));
  child.stderr?.on('data', (b: Buffer) => (d.output += b.toString('utf8')));
  if (child.pid !== undefined) pids.add(child.pid);
  daemons.push(d);
  return d;
}

const readyCount = (d: Daemon): number =>
  new Set(
    d.output
      .split('\n')
      .filter((l) => l.includes('"event":"replica.state"') && l.includes('"state":"ready"'))
      .map((l) => /"replica_id":"([^"]+)"/.exec(l)?.[1]),
  ).size;

function runRecords(dir: string): EngineRunRecord[] {
  const run = join(dir, 'data', 'run');
  if (!existsSync(run)) return [];
  return readdirSync(run)
    .filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(readFileSync(join(run, n), 'utf8')) as EngineRunRecord);
}

const portOf = (rec: EngineRunRecord): number => Number(rec.cmdline[rec.cmdline.indexOf('--port') + 1]);

async function answers(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => r.ok,
    () => false,
  );
}

async function exited(d: Daemon): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  await new Promise((r) => d.child.once('exit', r));
}

describe.skipIf(!linux).each<Kind>(['serve', 'pool-managerd'])('llorch %s after kill -9', (kind) => {
  it('the next start on the same data_dir reaps the engines the dead one left, then starts its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), `llorch-orphans-${kind}-`));
    const file = await configFile(kind, dir);
    const first = start(kind, file);
    await until(() => readyCount(first) === 2, 60_000).catch(() => {
      throw new Error(`the first daemon's replicas did not become ready:\n${first.output}`);
    });
    const old = runRecords(dir);
    expect(old).toHaveLength(2);
    await until(() => runRecords(dir).every((r) => r.engine_pid !== undefined), 90_000);
    const engines = runRecords(dir);
    for (const r of engines) {
      pids.add(r.pgid);
      pids.add(r.engine_pid ?? 0);
    }
    // The crash the watchdog cannot handle: the daemon and every watchdog, at once.
    process.kill(first.child.pid ?? 0, 'SIGKILL');
    for (const r of engines) process.kill(r.pgid, 'SIGKILL');
    await exited(first);
    await until(() => engines.every((r) => !alive(r.pgid)), 90_000);
    // Meaningful only if the engines survived it: they still run and serve on their ports.
    for (const r of engines) {
      expect(alive(r.engine_pid ?? 0)).toBe(true);
      expect(await answers(portOf(r))).toBe(true);
    }

    const second = start(kind, file);
    await until(() => readyCount(second) === 2, 60_000).catch(() => {
      throw new Error(`the second daemon's replicas did not become ready:\n${second.output}`);
    });
    const reapedLines = second.output.split('\n').filter((l) => l.includes('"event":"engine.orphan_reaped"'));
    expect(reapedLines).toHaveLength(2);
    for (const r of engines) {
      expect(reapedLines.some((l) => l.includes(`"pgid":${r.pgid}`))).toBe(true);
      expect(alive(r.engine_pid ?? 0)).toBe(false);
    }
    // Reaped before its own engines started.
    expect(second.output.indexOf('engine.orphan_reaped')).toBeLessThan(
      second.output.indexOf('"state":"preloading"'),
    );
    const fresh = runRecords(dir);
    expect(fresh).toHaveLength(2);
    for (const r of fresh) {
      pids.add(r.pgid);
      expect(engines.map((e) => e.pgid)).not.toContain(r.pgid);
      expect(await answers(portOf(r))).toBe(true);
    }

    // A clean stop leaves nothing: no engine, no run file.
    second.child.kill('SIGTERM');
    await exited(second);
    expect(second.child.exitCode).toBe(0);
    await until(() => fresh.every((r) => !alive(r.pgid) && !alive(r.engine_pid ?? 0)), 90_000);
    expect(runRecords(dir)).toEqual([]);
  });
});
