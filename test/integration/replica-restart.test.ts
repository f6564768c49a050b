/**
 * Ejected and restarted (SPEC §17 §5): a replica whose engine fails every task while its health
 * checks still pass (the simulator's out-of-memory fault on every request) is ejected after
 * three failures in a row, and its engine is killed and restarted under the restart policy — a
 * new process, counted in `pool_restarts_total` — then serves again after its self-test. The same
 * through pool-managerd: the orchestrator sends the node a `restart` command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import {
  KEYS,
  TEST_CTX,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

const CLI = 'dist/src/cli/llorch.js';
const NODE_CRED = 'restart-node-secret';
const ENGINE_KEY = 'restart-engine-key';
let h: Harness;
let node: ChildProcess | undefined;
let nodeLog = '';

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    nodes: [{ id: 'gpu-r', sha256: sha256Hex(NODE_CRED) }],
    node_timeout_ms: 5_000, // generous: a loaded machine must not lose the node
    pools: [
      // One replica: every task lands on it (nothing to re-dispatch to), so each failure counts.
      simPool('local', 'vllm', {
        launch: { worker: 'sim', parallel: 2, health_interval_ms: 100, sim: { tokens_per_s: 2_000 } },
      }),
      {
        id: 'remote',
        engine: 'vllm',
        model: { id: 'remote' },
        ctx: TEST_CTX,
        devices: 'cpu',
        hosts: ['gpu-r'],
        launch: { parallel: 2 },
      },
    ],
  });
  const dir = await mkdtemp(join(tmpdir(), 'llorch-restart-node-'));
  const file = join(dir, 'node.yaml');
  await writeFile(
    file,
    stringify({
      profile: 'dev',
      data_dir: join(dir, 'data'),
      node: { id: 'gpu-r', orchestrator_url: h.url, heartbeat_ms: 200 },
      pools: [
        simPool('remote', 'vllm', {
          launch: {
            worker: 'sim',
            parallel: 2,
            health_interval_ms: 100,
            // Known to the test, which needs it for the simulator's fault endpoint.
            api_key: ENGINE_KEY,
            sim: { tokens_per_s: 2_000 },
          },
        }),
      ],
    }),
  );
  node = spawn(process.execPath, [CLI, 'pool-managerd', '--config', file], {
    env: { ...process.env, LLORCH_NODE_CREDENTIAL: NODE_CRED },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  node.stdout?.on('data', (b: Buffer) => (nodeLog += b.toString('utf8')));
  node.stderr?.on('data', (b: Buffer) => (nodeLog += b.toString('utf8')));
});

afterAll(async () => {
  if (node && node.exitCode === null && node.signalCode === null) {
    const exited = new Promise((r) => node?.once('exit', r));
    node.kill('SIGTERM');
    await exited;
  }
  await h.close();
});

const pool = (id: string): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === id);
  if (!p) throw new Error(`no pool ${id}`);
  return p;
};

const simHeaders = (key?: string): Record<string, string> =>
  key === undefined ? {} : { authorization: `Bearer ${key}` };

async function simState(baseUrl: string, key?: string): Promise<{ pid: number }> {
  const res = await fetch(`${baseUrl}/__sim/state`, { headers: simHeaders(key) });
  return (await res.json()) as { pid: number };
}

async function breakEveryRequest(baseUrl: string, key?: string): Promise<void> {
  const res = await fetch(`${baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...simHeaders(key) },
    body: JSON.stringify({ oom_after_tokens: 0 }),
  });
  expect(res.status).toBe(200);
}

async function run(poolId: string, maxTokens = 4): Promise<{ event: string; data: Record<string, unknown> }> {
  const t = task(poolId, { engine: 'vllm', max_tokens: maxTokens });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  // Refused while the replica restarts (its state reached the orchestrator after the check).
  if (r.status !== 202) return { event: 'refused', data: r.json as Record<string, unknown> };
  const { events } = await readStream(h.url, t.task_id, { key: KEYS.alice });
  const last = events.at(-1);
  if (!last) throw new Error('empty stream');
  return last;
}

/** Fails tasks on the broken replica until it is taken down; returns how many failed. */
async function failUntilRestarted(poolId: string, replicaId: string): Promise<number> {
  let failed = 0;
  for (let k = 0; k < 20 && pool(poolId).replica(replicaId)?.state.kind === 'ready'; k++) {
    const last = await run(poolId);
    if (last.event === 'error') failed++;
    else break;
  }
  return failed;
}

describe('a replica that fails every task while its health checks pass', () => {
  it('is ejected, its engine killed and restarted (new pid, restart counted), and it serves again', async () => {
    await until(() => pool('local').readyReplicas().length === 1, 90_000);
    const replica = pool('local').supervisor.replicas()[0];
    if (!replica) throw new Error('no replica');
    const before = await simState(replica.adapter.baseUrl);
    await breakEveryRequest(replica.adapter.baseUrl);
    // Health checks pass throughout: only the failed tasks can take it down.
    expect(await run('local')).toMatchObject({ event: 'error', data: { code: 'WORKER_RESET' } });
    const failed = 1 + (await failUntilRestarted('local', replica.id));
    expect(failed).toBeGreaterThanOrEqual(3);
    await until(() => pool('local').replica(replica.id)?.state.kind !== 'ready', 90_000);
    await until(() => pool('local').replica(replica.id)?.state.kind === 'ready', 60_000);
    const again = pool('local').replica(replica.id);
    const after = await simState(again?.adapter.baseUrl ?? '');
    expect(after.pid).not.toBe(before.pid);
    expect(await run('local')).toMatchObject({ event: 'end', data: { tokens_out: 4 } });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/pool_restarts_total\{[^}]*replica_id="local-r0"[^}]*\} [1-9]/);
    expect(h.logs.lines.some((l) => l.includes('"event":"replica.restart_requested"'))).toBe(true);
    // Back from its self-test, it is no longer ejected.
    expect(pool('local').ejected()).not.toContain(replica.id);
  });

  it('on a pool-managerd host: the orchestrator sends a restart command and the replica serves again', async () => {
    await until(() => pool('remote').readyReplicas().length === 1, 60_000).catch((err: unknown) => {
      throw new Error(`the node's replica did not become ready (${String(err)}):\n${nodeLog}`);
    });
    const replica = pool('remote').readyReplicas()[0];
    if (!replica) throw new Error('no replica');
    expect(replica.id).toBe('gpu-r/remote-r0');
    const before = await simState(replica.adapter.baseUrl, ENGINE_KEY);
    await breakEveryRequest(replica.adapter.baseUrl, ENGINE_KEY);
    expect(await run('remote')).toMatchObject({ event: 'error', data: { code: 'WORKER_RESET' } });
    await failUntilRestarted('remote', replica.id);
    // The node restarts the engine: a new process answers at the replica's (new) address.
    await until(async () => {
      const r = pool('remote').replica(replica.id);
      if (r?.state.kind !== 'ready') return false;
      const s = await simState(r.adapter.baseUrl, ENGINE_KEY).catch(() => undefined);
      return s !== undefined && s.pid !== before.pid;
    }, 60_000);
    expect(await run('remote')).toMatchObject({ event: 'end', data: { tokens_out: 4 } });
    expect(
      h.logs.lines.some(
        (l) => l.includes('"event":"replica.restart_requested"') && l.includes('"node_id":"gpu-r"'),
      ),
    ).toBe(true);
  }, 150_000);
});
