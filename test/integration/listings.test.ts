/**
 * `GET /v1/sessions` (the key's tenant's live sessions) and `GET /v1/nodes` (pool-managerd nodes
 * with their liveness), over real HTTP; every answer is checked against the OpenAPI documents by
 * `call`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import type { NodeList, SessionList } from '../../src/index.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

let h: Harness;
const NODE_CREDENTIAL = 'listing-node-credential';

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    nodes: [
      { id: 'gpu-a', sha256: sha256Hex(NODE_CREDENTIAL) },
      { id: 'gpu-b', sha256: sha256Hex('never-used-credential') },
    ],
    // Short, so the test sees a node that stopped heartbeating become `lost`.
    node_timeout_ms: 500,
    pools: [simPool('fast', 'vllm')],
  });
});
afterAll(async () => {
  await h?.close();
});

const sessions = async (key: string, query = ''): Promise<SessionList> => {
  const r = await call(h.url, 'GET', `/v1/sessions${query}`, { key });
  expect(r.status).toBe(200);
  return r.json as SessionList;
};

/** Session ids are UUIDs; the names make the assertions readable. */
const ids = new Map<string, string>();
const sid = (name: string): string => ids.get(name) ?? (ids.set(name, randomUUID()), ids.get(name)!);
const named = (list: SessionList): string[] =>
  list.sessions.map((s) => [...ids].find(([, id]) => id === s.session_id)?.[0] ?? s.session_id);

const turn = async (key: string, name: string): Promise<void> => {
  // "Most recently used" is to the millisecond: each turn starts in a later one than the last.
  const t0 = Date.now();
  await until(() => Date.now() > t0);
  const sessionId = sid(name);
  const r = await call(h.url, 'POST', '/v1/tasks', {
    key,
    body: task('fast', { engine: 'vllm', session_id: sessionId, max_tokens: 4 }),
  });
  expect(r.status).toBe(202);
};

describe('GET /v1/sessions', () => {
  it("lists only the key's tenant's sessions, most recently used first, with their turns", async () => {
    await turn(KEYS.alice, 'alice-older');
    await turn(KEYS.alice, 'shared-id');
    await turn(KEYS.alice, 'shared-id');
    // Bob uses the same session id: his is a separate session, invisible to alice.
    await turn(KEYS.bob, 'shared-id');

    const alice = await sessions(KEYS.alice);
    expect(named(alice)).toEqual(['shared-id', 'alice-older']);
    expect(alice.sessions.map((s) => s.turns)).toEqual([2, 1]);
    for (const s of alice.sessions) expect(s.ttl_ms_remaining).toBeGreaterThan(0);
    const bob = await sessions(KEYS.bob);
    expect(named(bob)).toEqual(['shared-id']);
    expect(bob.sessions.map((s) => s.turns)).toEqual([1]);
    expect(named(await sessions(KEYS.alice, '?limit=1'))).toEqual(['shared-id']);
  });

  it('refuses a limit out of range and a control key', async () => {
    for (const q of ['?limit=0', '?limit=1001', '?limit=two']) {
      const r = await call(h.url, 'GET', `/v1/sessions${q}`, { key: KEYS.alice });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ code: 'INVALID_PARAMS', message: expect.stringContaining('limit') });
    }
    const r = await call(h.url, 'GET', '/v1/sessions', { key: KEYS.ops });
    expect(r.status).toBe(403);
  });

  it('no longer lists a deleted session', async () => {
    await turn(KEYS.bob, 'to-delete');
    expect(named(await sessions(KEYS.bob))).toContain('to-delete');
    const r = await call(h.url, 'DELETE', `/v1/sessions/${sid('to-delete')}`, { key: KEYS.bob });
    expect(r.status).toBe(204);
    expect(named(await sessions(KEYS.bob))).not.toContain('to-delete');
  });
});

describe('GET /v1/nodes', () => {
  const nodes = async (): Promise<NodeList['nodes']> => {
    const r = await call(h.url, 'GET', '/v1/nodes', { key: KEYS.ops });
    expect(r.status).toBe(200);
    return (r.json as NodeList).nodes;
  };

  it('shows configured nodes as unseen, a registered one as up, then lost once its heartbeats stop', async () => {
    expect((await nodes()).map((n) => [n.node_id, n.state])).toEqual([
      ['gpu-a', 'unseen'],
      ['gpu-b', 'unseen'],
    ]);
    const reg = await call(h.url, 'POST', '/v1/nodes/register', {
      headers: { authorization: `Bearer ${NODE_CREDENTIAL}` },
      body: { node_id: 'gpu-a', pools: [] },
    });
    expect(reg.status).toBe(200);
    const up = (await nodes()).find((n) => n.node_id === 'gpu-a');
    expect(up).toMatchObject({ state: 'up', gpus: 0, gpu_stale: false, pools: [] });
    expect(up?.last_seen_ms).toBeGreaterThan(0);
    // No heartbeat follows: the node timeout (500 ms) makes it lost.
    await until(async () => (await nodes()).find((n) => n.node_id === 'gpu-a')?.state === 'lost');
    expect((await nodes()).find((n) => n.node_id === 'gpu-b')?.state).toBe('unseen');
  });

  it('is control scope only', async () => {
    const r = await call(h.url, 'GET', '/v1/nodes', { key: KEYS.alice });
    expect(r.status).toBe(403);
  });
});
