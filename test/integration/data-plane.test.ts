/**
 * OrchQueue v1 data plane end to end (SPEC §2) on real llama-server replicas: enqueue, SSE
 * framing and order, late join, resume, cancel, sessions, auth and tenancy, typed errors.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectValidResponse, expectValidSseEvent } from '../support/openapi-response.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  sleep,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  type Harness,
  type Reply,
} from '../support/harness.js';

let h: Harness;
const A = KEYS.alice;

function expectContract(method: string, path: string, r: Reply): void {
  expectValidResponse({
    method,
    path,
    status: r.status,
    headers: Object.fromEntries(r.headers.entries()),
    body: r.json,
  });
}

async function enqueue(body: Record<string, unknown>, key: string = A): Promise<Reply> {
  const r = await call(h.url, 'POST', '/v1/tasks', { key, body });
  expectContract('POST', '/v1/tasks', r);
  return r;
}

beforeAll(async () => {
  const model = await tinyModelPath();
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    limits: { body_limit_bytes: 65_536 },
    sse: { metrics_interval_ms: 50 },
    pools: [tinyPool('tiny', model, { replicas: 2, session: { ttl_ms: 1_500, max_turns: 3 } })],
  });
});

afterAll(async () => {
  await h?.close();
});

describe('POST /v1/tasks → GET /v1/tasks/{id}/stream (ORCH-2001, ORCH-2002)', () => {
  it('accepts with 202, streams started → token* → end with exact framing', async () => {
    const body = task('tiny', { max_tokens: 24 });
    const r = await enqueue(body);
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ task_id: body.task_id, queue_position: expect.any(Number) });
    const s = await readStream(h.url, body.task_id, { key: A, headers: { 'x-correlation-id': 'corr-123' } });
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // The stream carries the task's correlation id (its enqueue's), not the reader's (SPEC §17).
    expect(s.headers.get('x-correlation-id')).toBe(r.headers.get('x-correlation-id'));
    // ORCH-2002 framing: `event: <name>\nid: <seq>\ndata: <one-line JSON>\n\n`, nothing else.
    expect(s.raw).toMatch(/^(event: (started|token|metrics|end)\nid: \d+\ndata: [^\n]+\n\n)+$/);
    const names = s.events.map((e) => e.event);
    expect(names[0]).toBe('started');
    expect(names.at(-1)).toBe('end');
    expect(names.filter((n) => n === 'started' || n === 'end')).toHaveLength(2);
    const tokens = s.events.filter((e) => e.event === 'token');
    expect(tokens.map((e) => e.data['i'])).toEqual(tokens.map((_, i) => i));
    const end = s.events.at(-1)?.data;
    expect(end?.['tokens_out']).toBe(tokens.length);
    expect(tokens.length).toBeGreaterThan(0);
    expect(s.events.map((e) => e.id)).toEqual(s.events.map((_, i) => i + 1));
    for (const e of s.events) expectValidSseEvent(e.event, e.data);
  });

  it('echoes X-Correlation-Id on responses and generates one when absent (OC-CTRL-2052)', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: A,
      body: task('tiny'),
      headers: { 'x-correlation-id': 'abc-1' },
    });
    expect(r.headers.get('x-correlation-id')).toBe('abc-1');
    const r2 = await call(h.url, 'GET', `/v1/sessions/${randomUUID()}`, { key: A });
    expect(r2.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gives a late subscriber every event from started, and resumes after Last-Event-ID', async () => {
    const body = task('tiny', { max_tokens: 12 });
    await enqueue(body);
    const first = await readStream(h.url, body.task_id, { key: A });
    await sleep(20);
    const late = await readStream(h.url, body.task_id, { key: A });
    expect(late.events).toEqual(first.events);
    const resumed = await readStream(h.url, body.task_id, { key: A, lastEventId: 3 });
    expect(resumed.events).toEqual(first.events.filter((e) => e.id > 3));
    expect(resumed.events[0]?.id).toBe(4);
  });

  it('is deterministic: same prompt and seed give the same token ids on either replica (ORCH-3045)', async () => {
    const runs: unknown[][] = [];
    for (let k = 0; k < 3; k++) {
      const body = task('tiny', { seed: 42, max_tokens: 20, prompt: 'The quick brown fox' });
      await enqueue(body);
      const s = await readStream(h.url, body.task_id, { key: A });
      runs.push(s.events.filter((e) => e.event === 'token').map((e) => e.data['id']));
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });
});

describe('POST /v1/tasks/{id}/cancel (ORCH-2003, ORCH-3017, ORCH-3026)', () => {
  it('stops a running task: end{canceled:true}, no token after the cancel returned, slot reusable', async () => {
    const body = task('tiny', { max_tokens: 2000, prompt: 'a' });
    await enqueue(body);
    const res = await fetch(`${h.url}/v1/tasks/${body.task_id}/stream`, {
      headers: { authorization: `Bearer ${A}` },
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('event: token')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    const c = await call(h.url, 'POST', `/v1/tasks/${body.task_id}/cancel`, { key: A });
    expect(c.status).toBe(204);
    const afterCancel = await readStream(h.url, body.task_id, { key: A });
    await sleep(100);
    const later = await readStream(h.url, body.task_id, { key: A });
    expect(later.events).toEqual(afterCancel.events);
    const end = later.events.at(-1);
    expect(end?.event).toBe('end');
    expect(end?.data['canceled']).toBe(true);
    const tokens = later.events.filter((e) => e.event === 'token');
    expect(end?.data['tokens_out']).toBe(tokens.length);
    expect(tokens.length).toBeLessThan(2000);
    await reader.cancel();
    // Idempotent on a finished task.
    expect((await call(h.url, 'POST', `/v1/tasks/${body.task_id}/cancel`, { key: A })).status).toBe(204);
    // Both slots take work again.
    const next = await Promise.all(
      [0, 1].map(async () => {
        const b = task('tiny', { max_tokens: 8 });
        await enqueue(b);
        return readStream(h.url, b.task_id, { key: A });
      }),
    );
    for (const s of next) expect(s.events.at(-1)?.event).toBe('end');
  });

  it('cancels a queued task and answers 404 for unknown ids', async () => {
    const r = await call(h.url, 'POST', `/v1/tasks/${randomUUID()}/cancel`, { key: A });
    expect(r.status).toBe(404);
    expectContract('POST', '/v1/tasks/{id}/cancel', r);
    expect(r.json).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('sessions (ORCH-2004/2005, ORCH-3021..3023)', () => {
  it('tracks turns, ttl and warmth; keeps the session on its replica; expires after the TTL', async () => {
    const session = randomUUID();
    const replicas: unknown[] = [];
    for (let k = 0; k < 2; k++) {
      const body = task('tiny', { session_id: session, max_tokens: 4 });
      await enqueue(body);
      await readStream(h.url, body.task_id, { key: A });
      const g = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A });
      expectContract('GET', '/v1/sessions/{id}', g);
      expect(g.status).toBe(200);
      expect(g.json).toMatchObject({ turns: k + 1, kv_warmth: true });
      expect((g.json as { ttl_ms_remaining: number }).ttl_ms_remaining).toBeLessThanOrEqual(1_500);
      replicas.push((g.json as { replica_id: string }).replica_id);
    }
    expect(replicas[1]).toBe(replicas[0]);
    await sleep(1_600);
    const gone = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A });
    expect(gone.status).toBe(404);
    expect(gone.json).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('starts a fresh session after max_turns', async () => {
    const session = randomUUID();
    for (let k = 0; k < 4; k++) {
      const body = task('tiny', { session_id: session, max_tokens: 2 });
      await enqueue(body);
      await readStream(h.url, body.task_id, { key: A });
    }
    const g = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A });
    expect(g.json).toMatchObject({ turns: 1 });
  });

  it("DELETE cancels the session's running task and erases its KV slot on llama-server (SPEC §17 §2.4)", async () => {
    const session = randomUUID();
    const first = task('tiny', { session_id: session, max_tokens: 8 });
    await enqueue(first);
    await readStream(h.url, first.task_id, { key: A });
    const g = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A });
    const replicaId = (g.json as { replica_id: string }).replica_id;
    const replica = h.running.orchestrator.pools[0]?.replica(replicaId);
    if (!replica) throw new Error(`no replica ${replicaId}`);
    const cached = async () => {
      const r = await fetch(`${replica.adapter.baseUrl}/slots`);
      const slots = (await r.json()) as { n_prompt_tokens?: number }[];
      return slots.reduce((n, s) => n + (s.n_prompt_tokens ?? 0), 0);
    };
    expect(await cached()).toBeGreaterThan(0);
    // Another tenant using the same id has a separate session and leaves the owner's alone.
    const bob = task('tiny', { session_id: session, max_tokens: 2 });
    expect((await enqueue(bob, KEYS.bob)).status).toBe(202);
    await readStream(h.url, bob.task_id, { key: KEYS.bob });
    const owner = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A });
    expect(owner.json).toMatchObject({ turns: 1, replica_id: replicaId });
    const bobView = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: KEYS.bob });
    expect(bobView.json).toMatchObject({ turns: 1 });
    await call(h.url, 'DELETE', `/v1/sessions/${session}`, { key: KEYS.bob });
    expect((await call(h.url, 'GET', `/v1/sessions/${session}`, { key: A })).status).toBe(200);
    // A turn still running is canceled (test/orchestrator/admission.test.ts proves that without
    // a race); here it may also have finished first, on a fast engine. Either way it ends once.
    const long = task('tiny', { session_id: session, max_tokens: 1_500, prompt: 'x' });
    await enqueue(long);
    const d = await call(h.url, 'DELETE', `/v1/sessions/${session}`, { key: A });
    expect(d.status).toBe(204);
    const s = await readStream(h.url, long.task_id, { key: A });
    expect(s.events.filter((e) => e.event === 'end' || e.event === 'error')).toHaveLength(1);
    const until = Date.now() + 10_000;
    while ((await cached()) > 0 && Date.now() < until) await sleep(50);
    expect(await cached()).toBe(0);
  });

  it('DELETE removes the session (204), then 404', async () => {
    const body = task('tiny', { max_tokens: 2 });
    await enqueue(body);
    await readStream(h.url, body.task_id, { key: A });
    const d = await call(h.url, 'DELETE', `/v1/sessions/${String(body['session_id'])}`, { key: A });
    expect(d.status).toBe(204);
    const again = await call(h.url, 'DELETE', `/v1/sessions/${String(body['session_id'])}`, { key: A });
    expect(again.status).toBe(404);
    expectContract('DELETE', '/v1/sessions/{id}', again);
  });
});

describe('auth and tenancy (ORCH-3035/3036, OC-CTRL-2040/2041)', () => {
  it('401 without or with a wrong key, 403 for the wrong plane', async () => {
    const none = await call(h.url, 'POST', '/v1/tasks', { body: task('tiny') });
    expect(none.status).toBe(401);
    expectContract('POST', '/v1/tasks', none);
    const wrong = await call(h.url, 'POST', '/v1/tasks', { key: 'nope', body: task('tiny') });
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain('nope');
    const ctl = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.ops, body: task('tiny') });
    expect(ctl.status).toBe(403);
    expect(ctl.json).toMatchObject({ code: 'FORBIDDEN' });
    const dataOnControl = await call(h.url, 'GET', '/v1/capabilities', { key: A });
    expect(dataOnControl.status).toBe(403);
    const caps = await call(h.url, 'GET', '/v1/capabilities', { key: KEYS.ops });
    expect(caps.status).toBe(200);
    expectContract('GET', '/v1/capabilities', caps);
  });

  it("tenants cannot read or cancel each other's tasks and sessions", async () => {
    const body = task('tiny', { max_tokens: 4 });
    await enqueue(body);
    const bobStream = await readStream(h.url, body.task_id, { key: KEYS.bob });
    expect(bobStream.status).toBe(404);
    const bobCancel = await call(h.url, 'POST', `/v1/tasks/${body.task_id}/cancel`, { key: KEYS.bob });
    expect(bobCancel.status).toBe(404);
    const mine = await readStream(h.url, body.task_id, { key: A });
    expect(mine.events.at(-1)?.event).toBe('end');
    const bobSession = await call(h.url, 'GET', `/v1/sessions/${String(body['session_id'])}`, {
      key: KEYS.bob,
    });
    expect(bobSession.status).toBe(404);
  });
});

describe('admission errors (SPEC §2.1, §2.5)', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['missing field', { max_tokens: undefined }, /max_tokens/],
    ['bad uuid', { task_id: 'not-a-uuid' }, /task_id/],
    ['unknown field', { colour: 'red' }, /colour/],
    ['bad enum', { priority: 'urgent' }, /priority/],
    ['unknown model', { model_ref: 'nope' }, /model_ref/],
    ['engine mismatch', { engine: 'vllm' }, /engine/],
    ['ctx above the model (ORCH-3014)', { ctx: 100_000 }, /ctx/],
    [
      'prompt + max_tokens above ctx (ORCH-3015)',
      { max_tokens: 2040, prompt: 'hello world, hello world' },
      /max_tokens/,
    ],
  ];
  for (const [name, patch, field] of cases) {
    it(`400 INVALID_PARAMS: ${name}`, async () => {
      const body: Record<string, unknown> = { ...task('tiny'), ...patch };
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      const r = await enqueue(body);
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ code: 'INVALID_PARAMS', retriable: false });
      expect((r.json as { message: string }).message).toMatch(field);
    });
  }

  it('a used task_id: the identical request gets its acceptance again, another body 409 (ORCH-3024, SPEC §17)', async () => {
    const body = task('tiny', { max_tokens: 2 });
    const first = await enqueue(body);
    expect(first.status).toBe(202);
    const dup = await enqueue(body);
    expect([200, 202]).toContain(dup.status);
    expect(dup.json).toEqual(first.json);
    const other = await enqueue({ ...body, max_tokens: 3 });
    expect(other.status).toBe(409);
    expect(other.json).toMatchObject({ code: 'CONFLICT', retriable: false });
    expect((other.json as { message: string }).message).toMatch(/task_id/);
    expectContract('POST', '/v1/tasks', other);
  });

  it('400 for malformed JSON and 413 for oversized bodies, and the daemon keeps serving', async () => {
    const bad = await call(h.url, 'POST', '/v1/tasks', { key: A, rawBody: '{"task_id": ' });
    expect(bad.status).toBe(400);
    expectContract('POST', '/v1/tasks', bad);
    const big = await call(h.url, 'POST', '/v1/tasks', {
      key: A,
      body: task('tiny', { prompt: 'x'.repeat(70_000) }),
    });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const notJson = await call(h.url, 'POST', '/v1/tasks', {
      key: A,
      rawBody: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(notJson.status).toBe(400);
    const ok = await enqueue(task('tiny', { max_tokens: 2 }));
    expect(ok.status).toBe(202);
  });

  it('404 envelopes for unknown task, session and route', async () => {
    const s = await readStream(h.url, randomUUID(), { key: A });
    expect(s.status).toBe(404);
    const g = await call(h.url, 'GET', `/v1/sessions/${randomUUID()}`, { key: A });
    expect(g.status).toBe(404);
    const route = await call(h.url, 'GET', '/v1/nothing', { key: A, undocumented: true });
    expect(route.status).toBe(404);
    expect(route.json).toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('observability (SPEC §12)', () => {
  it('/metrics exposes the contract metrics; logs carry the fields and never the keys', async () => {
    const m = await call(h.url, 'GET', '/metrics');
    expect(m.status).toBe(200);
    for (const name of [
      'tasks_enqueued_total',
      'tasks_started_total',
      'tasks_canceled_total',
      'tasks_rejected_total',
      'queue_depth',
      'latency_first_token_ms_bucket',
      'tokens_out_total',
    ]) {
      expect(m.text).toContain(name);
    }
    expect(m.text).toMatch(/tasks_rejected_total\{engine="llamacpp",reason="INVALID_PARAMS"\} \d+/);
    const all = h.logs.lines.join('\n');
    for (const key of Object.values(KEYS)) expect(all).not.toContain(key);
    const completed = h.logs.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['event'] === 'task.completed');
    expect(completed).toMatchObject({
      job_id: expect.any(String),
      session_id: expect.any(String),
      tenant_id: 'alice',
      engine: 'llamacpp',
      pool_id: 'tiny',
      replica_id: expect.stringMatching(/^tiny-r\d$/),
      tokens_out: expect.any(Number),
      queue_time_ms: expect.any(Number),
      correlation_id: expect.any(String),
    });
  });
});

describe('limits, metrics frames and the control plane', () => {
  it('sends periodic metrics frames on a running stream (ORCH-3100)', async () => {
    const body = task('tiny', { max_tokens: 1500, prompt: 'a' });
    await enqueue(body);
    const s = await readStream(h.url, body.task_id, { key: A });
    const metrics = s.events.filter((e) => e.event === 'metrics');
    expect(metrics.length).toBeGreaterThan(0);
    expect(metrics[0]?.data).toMatchObject({
      queue_depth: expect.any(Number),
      on_time_probability: expect.any(Number),
      kv_warmth: expect.any(Boolean),
    });
    expect(s.events.at(-1)?.event).toBe('end');
  });

  it('answers oversized headers with 431 and an envelope', async () => {
    const r = await fetch(`${h.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'x-big': 'y'.repeat(40_000) },
    }).catch((e: unknown) => e);
    if (r instanceof Response) {
      expect(r.status).toBe(431);
      expect(await r.json()).toMatchObject({ code: 'INVALID_PARAMS' });
    } else {
      // Some clients see the connection closed after the server's early answer; the daemon stays up.
      expect(r).toBeInstanceOf(Error);
    }
    expect((await enqueue(task('tiny', { max_tokens: 1 }))).status).toBe(202);
  });

  it('control plane: unknown catalog ids are 404; health and replica sets work', async () => {
    const catalog = await call(h.url, 'GET', '/v1/catalog/models/nope', { key: KEYS.ops });
    expect(catalog.status).toBe(404);
    expect(catalog.json).toMatchObject({ code: 'NOT_FOUND' });
    const health = await call(h.url, 'GET', '/v1/pools/tiny/health', { key: KEYS.ops });
    expect(health.json).toMatchObject({ pool_id: 'tiny', ready: true, live: true });
    const sets = await call(h.url, 'GET', '/v1/replicasets', { key: KEYS.ops });
    expect(sets.json).toMatchObject({
      replica_sets: [{ engine: 'llamacpp', replicas_ready: 2, slots_total: 2 }],
    });
    const unknown = await call(h.url, 'GET', '/v1/pools/nope/health', { key: KEYS.ops });
    expect(unknown.status).toBe(404);
  });
});
