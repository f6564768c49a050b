/**
 * SIGTERM ends a daemon within its drain deadline plus a small bound (SPEC §5, §17 §5), end to end
 * on real `llorch serve` and `llorch pool-managerd` processes with simulated engines: new work is
 * refused with a typed, retriable 503 at once; a task that can finish within `shutdown.drain_ms`
 * completes; one that cannot ends with a typed error on its stream; the engines stop; the process
 * exits 0 and leaves no engine behind. A second signal ends a daemon whose drain is stuck at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { EngineRunRecord } from '../../src/pool/run-files.js';
import { SseParser, type SseRecord } from '../../src/util/sse-parser.js';
import { KEYS, TEST_KEYS, call, simPool, task, until } from '../support/harness.js';

const CLI = 'dist/src/cli/llorch.js';

interface Daemon {
  readonly child: ChildProcess;
  readonly dir: string;
  output: string;
  url: string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
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

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

function runRecords(dir: string): EngineRunRecord[] {
  const run = join(dir, 'data', 'run');
  if (!existsSync(run)) return [];
  return readdirSync(run)
    .filter((n) => n.endsWith('.json'))
    .map((n) => JSON.parse(readFileSync(join(run, n), 'utf8')) as EngineRunRecord);
}

/** Pids of every engine (watchdog and engine process) the daemon recorded. */
async function enginePids(d: Daemon, count: number): Promise<number[]> {
  await until(() => {
    const recs = runRecords(d.dir);
    return recs.length === count && recs.every((r) => r.engine_pid !== undefined);
  }, 30_000);
  const out = runRecords(d.dir).flatMap((r) => [r.pgid, r.engine_pid ?? 0]);
  for (const p of out) pids.add(p);
  return out;
}

async function startDaemon(
  kind: 'serve' | 'pool-managerd',
  config: Record<string, unknown>,
): Promise<Daemon> {
  const dir = await mkdtemp(join(tmpdir(), `llorch-shutdown-${kind}-`));
  const file = join(dir, 'config.yaml');
  await writeFile(file, stringify({ profile: 'dev', data_dir: join(dir, 'data'), ...config }));
  const child = spawn(process.execPath, [CLI, kind, '--config', file], {
    env: { ...process.env, LLORCH_NODE_CREDENTIAL: 'shutdown-test-credential' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) pids.add(child.pid);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const d: Daemon = { child, dir, output: '', url: '', exit };
  const onData = (b: Buffer) => {
    d.output += b.toString('utf8');
    d.url ||= /listening on (http:\/\/[\d.:]+)/.exec(d.output)?.[1] ?? '';
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  daemons.push(d);
  const ready = (): boolean =>
    kind === 'serve'
      ? d.output.includes('"event":"pools.started"')
      : d.output.includes('"event":"replica.state"') && d.output.includes('"state":"ready"');
  await until(() => ready() || child.exitCode !== null, 60_000).catch(() => undefined);
  if (!ready()) throw new Error(`llorch ${kind} did not become ready:\n${d.output}`);
  return d;
}

const logged = (d: Daemon, event: string) => d.output.includes(`"event":"${event}"`);

/** A task stream read as it arrives (the daemon may go away under it). */
function openStream(url: string, taskId: string): { records: SseRecord[]; done: Promise<void> } {
  const records: SseRecord[] = [];
  const parser = new SseParser();
  const done = (async () => {
    const res = await fetch(`${url}/v1/tasks/${taskId}/stream`, {
      headers: { authorization: `Bearer ${KEYS.alice}` },
    });
    if (!res.body) return;
    try {
      for await (const chunk of res.body) records.push(...parser.push(chunk as Uint8Array));
    } catch {
      // The connection closed under the reader (a daemon that exits at once).
    }
  })();
  return { records, done };
}

async function submit(d: Daemon, maxTokens: number): Promise<string> {
  const t = task('slow', { engine: 'vllm', max_tokens: maxTokens, deadline_ms: 3_600_000 });
  const r = await call(d.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  expect(r.status).toBe(202);
  return t.task_id;
}

const serveConfig = (drainMs: number) => ({
  listen: { host: '127.0.0.1', port: 0 },
  auth: { keys: TEST_KEYS },
  shutdown: { drain_ms: drainMs },
  pools: [
    // Slow tokens: a long task cannot finish within the drain deadline, a three-token one can.
    simPool('slow', 'vllm', {
      launch: { worker: 'sim', parallel: 4, sim: { tokens_per_s: 5 } },
      timeouts: { wall_ms: 3_600_000, idle_ms: 600_000 },
    }),
  ],
});

const last = (records: readonly SseRecord[]) => {
  const r = records.at(-1);
  return r === undefined
    ? undefined
    : { event: r.event, data: JSON.parse(r.data) as Record<string, unknown> };
};

describe('llorch serve on SIGTERM', () => {
  it('refuses new work (503, Retry-After), finishes what fits the drain deadline, ends the rest typed, exits 0, no engine left', async () => {
    const d = await startDaemon('serve', serveConfig(10_000));
    const engines = await enginePids(d, 1);
    const long = openStream(d.url, await submit(d, 1_000));
    const short = openStream(d.url, await submit(d, 3));
    // Both are running (a first token each) when the signal comes.
    await until(() => [long, short].every((s) => s.records.some((r) => r.event === 'token')), 90_000);
    d.child.kill('SIGTERM');
    await until(() => logged(d, 'shutdown'), 90_000);

    const refused = await call(d.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('slow', { engine: 'vllm', max_tokens: 3 }),
    });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'POOL_UNAVAILABLE', retriable: true });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    await short.done;
    expect(last(short.records)).toMatchObject({ event: 'end', data: { tokens_out: 3 } });
    await long.done;
    expect(last(long.records)).toMatchObject({
      event: 'error',
      data: { code: 'POOL_UNAVAILABLE', retriable: true },
    });
    expect(long.records.filter((r) => r.event === 'end' || r.event === 'error')).toHaveLength(1);

    expect(await d.exit).toEqual({ code: 0, signal: null });
    expect(logged(d, 'shutdown.forced')).toBe(false);
    await until(() => !engines.some(alive), 90_000);
    expect(runRecords(d.dir)).toEqual([]);
  });

  it('a second signal ends a daemon whose drain is stuck at once, engines included', async () => {
    // The drain would wait two minutes for the long task.
    const d = await startDaemon('serve', serveConfig(120_000));
    const engines = await enginePids(d, 1);
    const long = openStream(d.url, await submit(d, 1_000));
    await until(() => long.records.some((r) => r.event === 'token'), 90_000);
    d.child.kill('SIGTERM');
    await until(() => logged(d, 'shutdown'), 90_000);
    expect(d.child.exitCode).toBeNull();
    d.child.kill('SIGTERM');
    // Well before the drain deadline.
    const exit = await Promise.race([
      d.exit,
      new Promise<'still running'>((r) => setTimeout(() => r('still running'), 60_000).unref()),
    ]);
    expect(exit).toEqual({ code: 143, signal: null });
    expect(logged(d, 'shutdown.immediate')).toBe(true);
    await until(() => !engines.some(alive), 90_000);
    await long.done;
  });
});

describe('llorch pool-managerd on SIGTERM', () => {
  it('stops its engines and exits 0, leaving no engine and no run file', async () => {
    const d = await startDaemon('pool-managerd', {
      shutdown: { drain_ms: 2_000 },
      // Nobody listens there: the node keeps trying to register; its engines run regardless.
      node: { id: 'shutdown-node', orchestrator_url: 'http://127.0.0.1:9', heartbeat_ms: 200 },
      pools: [simPool('slow', 'vllm', { replicas: 2, launch: { worker: 'sim', parallel: 1 } })],
    });
    const engines = await enginePids(d, 2);
    d.child.kill('SIGTERM');
    expect(await d.exit).toEqual({ code: 0, signal: null });
    expect(logged(d, 'shutdown')).toBe(true);
    await until(() => !engines.some(alive), 90_000);
    expect(runRecords(d.dir)).toEqual([]);
  });
});
