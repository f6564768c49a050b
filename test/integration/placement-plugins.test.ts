/**
 * Placement plugins through the public API (SPEC §10): the example GPU placement policy
 * (sdk/examples/gpu-placement) built from the SDK, real sim replicas on their own devices, real
 * `POST /v1/tasks`; which replica ran a task is read from the orchestrator's dispatch log lines.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPlugin } from '../../src/plugins/plugin-build.js';
import {
  call,
  KEYS,
  simPool,
  startHarness,
  task,
  TEST_KEYS,
  until,
  type Harness,
} from '../support/harness.js';
import { writeFixture } from '../plugins/wat-fixtures.js';

/** Two single-slot replicas, one per GPU; tokens slow enough that a task holds its slot. */
const gpuPool = () =>
  simPool('p0', 'llamacpp', {
    replicas: 2,
    devices: [0, 1],
    replica_devices: [[0], [1]],
    launch: {
      worker: 'sim',
      parallel: 1,
      startup_timeout_ms: 30_000,
      health_interval_ms: 100,
      sim: { tokens_per_s: 20 },
    },
  });

interface Dispatch {
  readonly job_id: string;
  readonly replica_id: string;
}

function dispatches(h: Harness): Dispatch[] {
  return h.logs.lines
    .filter((l) => l.includes('"event":"task.dispatched"'))
    .map((l) => JSON.parse(l) as Dispatch);
}

const submit = async (h: Harness, key: string, extra: Record<string, unknown> = {}): Promise<string> => {
  // A far deadline: 2000 tokens at 20 tokens/s is ~100 s, which the start predictions see.
  const body = task('p0', { max_tokens: 2_000, deadline_ms: 600_000, ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key, body });
  expect(r.status).toBe(202);
  return body.task_id;
};

/** The example, built once for the file the way an operator builds it. */
let example: Promise<string> | undefined;
const examplePlugin = (): Promise<string> =>
  (example ??= mkdtemp(join(tmpdir(), 'llorch-placement-')).then(async (dir) => {
    const built = await buildPlugin('sdk/examples/gpu-placement', { out: join(dir, 'gpu-placement.wasm') });
    return built.path;
  }));

describe('the example GPU placement policy (sdk/examples/gpu-placement)', () => {
  let h: Harness;
  beforeAll(async () => {
    const path = await examplePlugin();
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [gpuPool()],
      // FIFO: the queue's head is the oldest task, so a held head would block everyone behind it.
      scheduling: { mode: 'fifo' },
      plugins: [
        {
          id: 'gpu-placement',
          path,
          hooks: ['placement'],
          budget_ms: 200,
          params: { tenants: { alice: ['0'] } },
        },
      ],
    });
  });
  afterAll(async () => h?.close());

  it("keeps a listed tenant on its GPU, and its waiting tasks do not hold back another tenant's", async () => {
    const a1 = await submit(h, KEYS.alice);
    await until(() => dispatches(h).some((d) => d.job_id === a1));
    const a2 = await submit(h, KEYS.alice);
    const a3 = await submit(h, KEYS.alice);
    // Bob's task is behind alice's two in FIFO order; GPU 1 is free and alice may not use it.
    const b1 = await submit(h, KEYS.bob);
    await until(() => dispatches(h).some((d) => d.job_id === b1));
    expect(dispatches(h).find((d) => d.job_id === b1)?.replica_id).toBe('p0-r1');
    expect(dispatches(h).some((d) => d.job_id === a2 || d.job_id === a3)).toBe(false);

    // Each of alice's tasks runs on GPU 0 once the one before it is done.
    for (const id of [a1, a2])
      expect((await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key: KEYS.alice })).status).toBe(204);
    await until(() => dispatches(h).some((d) => d.job_id === a3));
    for (const id of [a1, a2, a3])
      expect(dispatches(h).find((d) => d.job_id === id)?.replica_id).toBe('p0-r0');
    for (const [id, key] of [
      [a3, KEYS.alice],
      [b1, KEYS.bob],
    ] as const)
      expect((await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key })).status).toBe(204);

    const decisions = h.logs.lines
      .filter((l) => l.includes('"event":"plugin.decision"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(decisions.find((d) => d.job_id === a1)).toMatchObject({
      plugin: 'gpu-placement',
      hook: 'placement',
      decision: 'place',
      allow: ['p0-r0'],
      tenant_id: 'alice',
    });
    // Bob prefers the GPU no tenant is kept on.
    expect(decisions.find((d) => d.job_id === b1)).toMatchObject({ scores: { 'p0-r1': 1 } });
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toContain('plugin_calls_total{plugin="gpu-placement",hook="placement",result="ok"} 4');
  });

  it('an unlisted tenant goes where its score sends it while that replica is free', async () => {
    const b = await submit(h, KEYS.bob, { max_tokens: 4 });
    await until(() => dispatches(h).some((d) => d.job_id === b));
    expect(dispatches(h).find((d) => d.job_id === b)?.replica_id).toBe('p0-r1');
  });
});

describe('placement decisions the host cannot use fall back to the built-in placement', () => {
  let h: Harness;
  beforeAll(async () => {
    const ghost = await writeFixture(
      'ghost',
      { decision: '{"decision":"place","allow":["p9-r0"]}' },
      { id: 'ghost', hooks: ['placement'] },
    );
    const nowhere = await writeFixture(
      'nowhere',
      { decision: '{"decision":"place","allow":[]}' },
      { id: 'nowhere', hooks: ['placement'] },
    );
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [gpuPool()],
      plugins: [
        { id: 'ghost', path: ghost, hooks: ['placement'], budget_ms: 200 },
        { id: 'nowhere', path: nowhere, hooks: ['placement'], budget_ms: 200, quarantine_after: 100 },
      ],
    });
  });
  afterAll(async () => h?.close());

  it("a replica outside the snapshot is malformed (logged, counted); the next plugin's decision is used", async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') });
    // `nowhere` allows no replica: the submission is refused, not retriable, and nothing is queued.
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({
      code: 'POOL_UNAVAILABLE',
      retriable: false,
      message: "plugin 'nowhere' allows this task on no replica of model 'p0'",
    });
    expect(h.running.orchestrator.pools[0]!.queue.size).toBe(0);
    const fallback = h.logs.lines.find((l) => l.includes('"event":"plugin.fallback"'));
    expect(JSON.parse(fallback!)).toMatchObject({ plugin: 'ghost', hook: 'placement', reason: 'malformed' });
    expect(fallback).toContain("replica(s) 'p9-r0' are not in the snapshot");
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toContain('plugin_fallbacks_total{plugin="ghost",reason="malformed"} 1');
  });
});

describe('placement across the members of a replica set', () => {
  let h: Harness;
  const member = (id: string, device: number) =>
    simPool(id, 'llamacpp', {
      model: { id: 'm' },
      devices: [device],
      launch: {
        worker: 'sim',
        parallel: 1,
        startup_timeout_ms: 30_000,
        health_interval_ms: 100,
        sim: { tokens_per_s: 2_000 },
      },
    });
  beforeAll(async () => {
    const path = await examplePlugin();
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [member('pa', 0), member('pb', 1)],
      plugins: [
        {
          id: 'gpu-placement',
          path,
          hooks: ['placement'],
          budget_ms: 200,
          params: { tenants: { alice: ['1'] } },
        },
      ],
    });
  });
  afterAll(async () => h?.close());

  it('a task is queued on the member that holds its allowed replica, and runs there', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const body = task('m', { max_tokens: 8 });
      expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body })).status).toBe(202);
      ids.push(body.task_id);
    }
    await until(() => ids.every((id) => dispatches(h).some((d) => d.job_id === id)));
    for (const id of ids) expect(dispatches(h).find((d) => d.job_id === id)?.replica_id).toBe('pb-r0');
    // Admission queued them there: none had to be moved from the other member at dispatch.
    expect(h.logs.lines.filter((l) => l.includes('"event":"task.moved"'))).toEqual([]);
  });
});
