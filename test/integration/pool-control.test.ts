/**
 * Control plane pool operations (SPEC §6) through the public API: drain, reload under load with
 * no task lost, automatic rollback when the new model fails to load, explicit rollback, conflicts
 * and scopes. Simulated pools "load" model files; the llama.cpp pool reloads a real GGUF.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyGguf } from '../../src/models/tiny-gguf.js';
import {
  KEYS,
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

let h: Harness;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-reload-'));
  for (const name of ['a.bin', 'b.bin']) await writeFile(join(dir, name), name);
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      simPool('drain', 'vllm', { launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 200 } } }),
      simPool('reload', 'tgi', {
        model: { id: 'reload', path: join(dir, 'a.bin') },
        launch: { worker: 'sim', parallel: 2, sim: { tokens_per_s: 200 } },
      }),
      tinyPool('llama', await tinyModelPath()),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

type Health = {
  ready: boolean;
  draining: boolean;
  reloading?: boolean;
  model_digest?: string;
  lifecycle?: {
    operation: string;
    state: string;
    model_ref?: string;
    previous_model_ref?: string;
    cause?: string;
  };
};
const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;
const submit = (body: Record<string, unknown>) => call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
const terminalOf = async (id: string) => {
  const { events } = await readStream(h.url, id, { key: KEYS.alice });
  expect(events.filter((e) => e.event === 'end' || e.event === 'error')).toHaveLength(1);
  return events.at(-1);
};

describe('control plane scope', () => {
  it('data-plane keys get 403 on control operations; unknown pools 404', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/pools/drain/drain', { deadline_ms: 1 }],
      ['POST', '/v1/pools/reload/reload', { new_model_ref: 'x' }],
      ['GET', '/v1/pools/drain/health', undefined],
    ] as const) {
      const r = await call(h.url, method, path, { key: KEYS.alice, ...(body ? { body } : {}) });
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ code: 'FORBIDDEN' });
    }
    expect(
      (await call(h.url, 'POST', '/v1/pools/nope/drain', { key: KEYS.ops, body: { deadline_ms: 1 } })).status,
    ).toBe(404);
    const bad = await call(h.url, 'POST', '/v1/pools/reload/reload', { key: KEYS.ops, body: {} });
    expect(bad.status).toBe(400);
    expect(String((bad.json as { message: string }).message)).toContain('new_model_ref');
  });
});

describe('reload (ORCH-2102, ORCH-3033)', () => {
  it('under load: queued tasks wait and run on the new model, in-flight ones finish, none is lost', async () => {
    const tasks = Array.from({ length: 6 }, () => task('reload', { engine: 'tgi', max_tokens: 40 }));
    for (const t of tasks) expect((await submit(t)).status).toBe(202);
    const r = await call(h.url, 'POST', '/v1/pools/reload/reload', {
      key: KEYS.ops,
      body: { new_model_ref: join(dir, 'b.bin'), deadline_ms: 10_000 },
    });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ pool_id: 'reload', operation: 'reload' });
    // While engines are swapped, new work is refused (retriable), never silently queued.
    const during = await submit(task('reload', { engine: 'tgi', max_tokens: 2 }));
    expect([202, 503]).toContain(during.status);
    for (const t of tasks) expect((await terminalOf(t.task_id))?.event).toBe('end');
    await until(async () => (await health('reload')).lifecycle?.state === 'succeeded', 90_000);
    const hl = await health('reload');
    expect(hl.lifecycle).toMatchObject({
      operation: 'reload',
      model_ref: join(dir, 'b.bin'),
      previous_model_ref: join(dir, 'a.bin'),
    });
    const after = task('reload', { engine: 'tgi', max_tokens: 3 });
    expect((await submit(after)).status).toBe(202);
    expect((await terminalOf(after.task_id))?.event).toBe('end');
  });

  it('a new model that fails to load is rolled back automatically; the pool keeps serving', async () => {
    const r = await call(h.url, 'POST', '/v1/pools/reload/reload', {
      key: KEYS.ops,
      body: { new_model_ref: join(dir, 'missing.bin'), deadline_ms: 1_000 },
    });
    expect(r.status).toBe(202);
    const conflict = await call(h.url, 'POST', '/v1/pools/reload/reload', {
      key: KEYS.ops,
      body: { new_model_ref: join(dir, 'a.bin') },
    });
    expect(conflict.status).toBe(409);
    expect(conflict.json).toMatchObject({ code: 'CONFLICT' });
    await until(async () => (await health('reload')).lifecycle?.state !== 'in_progress', 90_000);
    const hl = await health('reload');
    expect(hl.lifecycle).toMatchObject({ state: 'rolled_back' });
    expect(hl.lifecycle?.cause).toMatch(/missing\.bin/);
    expect(hl.ready).toBe(true);
    const t = task('reload', { engine: 'tgi', max_tokens: 3 });
    expect((await submit(t)).status).toBe(202);
    expect((await terminalOf(t.task_id))?.event).toBe('end');
  });

  it('rollback: returns to the model served before the last successful reload', async () => {
    const r = await call(h.url, 'POST', '/v1/pools/reload/reload', {
      key: KEYS.ops,
      body: { rollback: true },
    });
    expect(r.status).toBe(202);
    await until(async () => (await health('reload')).lifecycle?.state === 'succeeded', 90_000);
    expect((await health('reload')).lifecycle).toMatchObject({
      operation: 'rollback',
      model_ref: join(dir, 'a.bin'),
    });
  });

  it('llama.cpp: a reload to another GGUF changes the served digest', async () => {
    const before = (await health('llama')).model_digest;
    const other = join(dir, 'tiny-1024.gguf');
    await writeTinyGguf(other, { ctx: 1024 });
    const r = await call(h.url, 'POST', '/v1/pools/llama/reload', {
      key: KEYS.ops,
      body: { new_model_ref: other },
    });
    expect(r.status).toBe(202);
    await until(async () => (await health('llama')).lifecycle?.state === 'succeeded', 90_000);
    const after = await health('llama');
    expect(after.model_digest).toMatch(/^sha256:/);
    expect(after.model_digest).not.toBe(before);
  });
});

describe('drain (ORCH-2101)', () => {
  it('in-flight work finishes, queued work ends POOL_UNAVAILABLE, new work is refused', async () => {
    // Two seconds of decoding on the one slot: still running when the drain arrives, even on a
    // loaded machine (20 tokens could end first, and the queued task would be the one running).
    const running = task('drain', { engine: 'vllm', max_tokens: 400 });
    const queued = task('drain', { engine: 'vllm', max_tokens: 20 });
    expect((await submit(running)).status).toBe(202);
    expect((await submit(queued)).status).toBe(202);
    await until(() => {
      const pool = h.running.orchestrator.pools.find((p) => p.id === 'drain');
      return pool?.running.size === 1 && pool.queue.size === 1;
    });
    const r = await call(h.url, 'POST', '/v1/pools/drain/drain', {
      key: KEYS.ops,
      body: { deadline_ms: 5_000 },
    });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ pool_id: 'drain', operation: 'drain', deadline_ms: 5_000 });
    expect((await terminalOf(running.task_id))?.event).toBe('end');
    expect(await terminalOf(queued.task_id)).toMatchObject({
      event: 'error',
      data: { code: 'POOL_UNAVAILABLE' },
    });
    const refused = await submit(task('drain', { engine: 'vllm' }));
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
    await until(async () => (await health('drain')).lifecycle?.state === 'succeeded');
    expect((await health('drain')).draining).toBe(true);
  });

  it('a drained pool reports ready: false, since admission refuses it', async () => {
    // The previous test left the pool drained, with its replicas still up.
    expect(await health('drain')).toMatchObject({ ready: false, draining: true, reloading: false });
    const refused = await submit(task('drain', { engine: 'vllm' }));
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
  });

  it('in-flight work past the drain deadline ends with a typed error', async () => {
    // The pool is drained; reload it back into service first.
    await call(h.url, 'POST', '/v1/pools/drain/reload', {
      key: KEYS.ops,
      body: { new_model_ref: join(dir, 'a.bin') },
    });
    await until(async () => (await health('drain')).lifecycle?.state === 'succeeded', 90_000);
    expect((await health('drain')).draining).toBe(false);
    const long = task('drain', { engine: 'vllm', max_tokens: 2_000 });
    expect((await submit(long)).status).toBe(202);
    await until(() => (h.running.orchestrator.pools.find((p) => p.id === 'drain')?.running.size ?? 0) === 1);
    await call(h.url, 'POST', '/v1/pools/drain/drain', { key: KEYS.ops, body: { deadline_ms: 100 } });
    expect(await terminalOf(long.task_id)).toMatchObject({
      event: 'error',
      data: { code: 'POOL_UNAVAILABLE' },
    });
  });
});
