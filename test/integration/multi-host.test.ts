/**
 * One orchestrator and two pool-managerd processes on one machine (loopback), each a "GPU host"
 * with its own process group: registration with node credentials, placement across hosts, a host
 * killed mid-stream (its tasks end WORKER_RESET, its replicas turn unready, the other host keeps
 * serving), and its clean return. Host B also runs a real llama-server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import {
  KEYS,
  TEST_CTX,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  until,
  type Harness,
} from '../support/harness.js';

const CLI = 'dist/src/cli/llorch.js';
const CRED = { 'gpu-a': 'cred-a-secret', 'gpu-b': 'cred-b-secret' } as const;
let h: Harness;
let dir: string;
const nodes = new Map<string, ChildProcess>();

async function startNode(id: keyof typeof CRED): Promise<void> {
  const pools = [
    simPool('fleet', 'vllm', { launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 100 } } }),
  ];
  if (id === 'gpu-b') pools.push(tinyPool('llama', await tinyModelPath()));
  const file = join(dir, `${id}.yaml`);
  await writeFile(
    file,
    stringify({ profile: 'dev', node: { id, orchestrator_url: h.url, heartbeat_ms: 200 }, pools }),
  );
  // Its own process group: killing the group is losing the whole host, engines included.
  const child = spawn(process.execPath, [CLI, 'pool-managerd', '--config', file], {
    env: { ...process.env, LLORCH_NODE_CREDENTIAL: CRED[id] },
    stdio: 'ignore',
    detached: true,
  });
  nodes.set(id, child);
}

function killHost(id: string): void {
  const child = nodes.get(id);
  if (child?.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-hosts-'));
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    nodes: Object.entries(CRED).map(([id, c]) => ({ id, sha256: sha256Hex(c) })),
    node_timeout_ms: 3_000, // generous: a loaded CI machine must not lose the healthy host
    pools: [
      {
        id: 'fleet',
        engine: 'vllm',
        model: { id: 'fleet' },
        ctx: TEST_CTX,
        devices: 'cpu',
        hosts: ['gpu-a', 'gpu-b'],
        launch: { parallel: 1 },
      },
      {
        id: 'llama',
        engine: 'llamacpp',
        model: { id: 'llama' },
        ctx: TEST_CTX,
        devices: 'cpu',
        hosts: ['gpu-b'],
      },
    ],
  });
  await Promise.all([startNode('gpu-a'), startNode('gpu-b')]);
});
afterAll(async () => {
  for (const id of nodes.keys()) {
    try {
      killHost(id);
    } catch {
      // already gone
    }
  }
  await h.close();
});

type Health = { ready: boolean; replicas: { replica_id: string; state: string; cause?: string }[] };
const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;
const readyReplicas = async (id: string) =>
  (await health(id)).replicas
    .filter((r) => r.state === 'ready')
    .map((r) => r.replica_id)
    .sort();

describe('pool-managerd across hosts (SPEC §5)', () => {
  it('both hosts register their replicas with their node credentials', async () => {
    await until(
      async () => (await readyReplicas('fleet')).length === 2 && (await readyReplicas('llama')).length === 1,
      60_000,
    );
    expect(await readyReplicas('fleet')).toEqual(['gpu-a/fleet-r0', 'gpu-b/fleet-r0']);
    expect(await readyReplicas('llama')).toEqual(['gpu-b/llama-r0']);
    const bad = await fetch(`${h.url}/v1/nodes/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
      body: JSON.stringify({ node_id: 'gpu-a', pools: [] }),
    });
    expect(bad.status).toBe(401);
  });

  it('places work across hosts, and a real llama-server on a node serves through the orchestrator', async () => {
    const ts = [0, 1].map(() => task('fleet', { engine: 'vllm', max_tokens: 30 }));
    await Promise.all(ts.map((t) => call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })));
    const ends = await Promise.all(
      ts.map(async (t) => (await readStream(h.url, t.task_id, { key: KEYS.alice })).events.at(-1)),
    );
    expect(ends.map((e) => e?.data['replica_id']).sort()).toEqual(['gpu-a/fleet-r0', 'gpu-b/fleet-r0']);
    const l = task('llama', { max_tokens: 8 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: l })).status).toBe(202);
    const end = (await readStream(h.url, l.task_id, { key: KEYS.alice })).events.at(-1);
    expect(end).toMatchObject({ event: 'end', data: { replica_id: 'gpu-b/llama-r0' } });
  });

  it('a host lost mid-stream: its task ends WORKER_RESET, its replicas turn unready, the other host serves', async () => {
    const ts = [0, 1].map(() => task('fleet', { engine: 'vllm', max_tokens: 300 }));
    for (const t of ts)
      expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    const pool = h.running.orchestrator.pools.find((p) => p.id === 'fleet');
    await until(() => (pool?.running.size ?? 0) === 2);
    const onA = [...(pool?.running.values() ?? [])].find((r) => r.replicaId.startsWith('gpu-a/'))?.taskId;
    // Once a token was sent the task cannot move (a task lost before its first token is
    // dispatched again elsewhere: test/orchestrator/redispatch.test.ts).
    const alice = { tenant: 'alice', keyId: 'alice', scopes: ['data' as const] };
    await until(() => onA !== undefined && h.running.orchestrator.task(alice, onA).tokensOut > 0);
    killHost('gpu-a');
    const results = await Promise.all(
      ts.map(
        async (t) => [t.task_id, (await readStream(h.url, t.task_id, { key: KEYS.alice })).events] as const,
      ),
    );
    for (const [id, events] of results) {
      const last = events.at(-1);
      if (id === onA) {
        expect(last).toMatchObject({ event: 'error', data: { code: 'WORKER_RESET', retriable: true } });
      } else expect(last).toMatchObject({ event: 'end', data: { tokens_out: 300 } });
    }
    await until(
      async () =>
        (await health('fleet')).replicas.some(
          (r) => r.replica_id === 'gpu-a/fleet-r0' && /host 'gpu-a' lost/.test(r.cause ?? ''),
        ),
      15_000,
    );
    const after = task('fleet', { engine: 'vllm', max_tokens: 5 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: after })).status).toBe(202);
    expect((await readStream(h.url, after.task_id, { key: KEYS.alice })).events.at(-1)).toMatchObject({
      event: 'end',
      data: { replica_id: 'gpu-b/fleet-r0' },
    });
  });

  it('when the host comes back it registers again cleanly', async () => {
    await startNode('gpu-a');
    await until(async () => (await readyReplicas('fleet')).length === 2, 90_000);
    expect(await readyReplicas('fleet')).toEqual(['gpu-a/fleet-r0', 'gpu-b/fleet-r0']);
  });

  it('reload on every host (pool-managerd commands); a model that fails to load is rolled back on the hosts', async () => {
    const model = join(dir, 'fleet-v2.bin');
    await writeFile(model, 'v2');
    const lifecycle = async () =>
      ((await health('fleet')) as Health & { lifecycle?: { state: string; cause?: string } }).lifecycle;
    const queued = task('fleet', { engine: 'vllm', max_tokens: 20 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: queued })).status).toBe(202);
    const ok = await call(h.url, 'POST', '/v1/pools/fleet/reload', {
      key: KEYS.ops,
      body: { new_model_ref: model, deadline_ms: 5_000 },
    });
    expect(ok.status).toBe(202);
    await until(async () => (await lifecycle())?.state === 'succeeded', 90_000);
    await until(async () => (await readyReplicas('fleet')).length === 2, 90_000);
    expect((await readStream(h.url, queued.task_id, { key: KEYS.alice })).events.at(-1)?.event).toBe('end');

    const bad = await call(h.url, 'POST', '/v1/pools/fleet/reload', {
      key: KEYS.ops,
      body: { new_model_ref: join(dir, 'nope.bin') },
    });
    expect(bad.status).toBe(202);
    await until(async () => (await lifecycle())?.state !== 'in_progress', 60_000);
    expect(await lifecycle()).toMatchObject({
      state: 'rolled_back',
      cause: expect.stringMatching(/nope\.bin/),
    });
    await until(async () => (await readyReplicas('fleet')).length === 2, 90_000);
    const after = task('fleet', { engine: 'vllm', max_tokens: 3 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: after })).status).toBe(202);
    expect((await readStream(h.url, after.task_id, { key: KEYS.alice })).events.at(-1)?.event).toBe('end');
  });

  it('drain of a remote pool: in-flight work finishes, then the hosts stop its engines', async () => {
    const running = task('fleet', { engine: 'vllm', max_tokens: 20 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: running })).status).toBe(202);
    const r = await call(h.url, 'POST', '/v1/pools/fleet/drain', {
      key: KEYS.ops,
      body: { deadline_ms: 5_000 },
    });
    expect(r.status).toBe(202);
    expect((await readStream(h.url, running.task_id, { key: KEYS.alice })).events.at(-1)?.event).toBe('end');
    await until(async () => (await health('fleet')).replicas.every((x) => x.state === 'stopped'), 90_000);
    const refused = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('fleet', { engine: 'vllm' }),
    });
    expect(refused.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
  });
});
