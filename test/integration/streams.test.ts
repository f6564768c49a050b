/**
 * Task streams through the real server (SPEC §2.2 with §17): `Last-Event-ID` beyond what the
 * client can have seen, the terminal event whatever the id, the bounded event window and its
 * typed refusal, the task's correlation id on the stream, and `cancel_on_disconnect` counting
 * every reader of a task.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/domain/submit.js';
import type { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { parseSse } from '../../src/util/sse-parser.js';
import { expectValidResponse, expectValidSseEvent } from '../support/openapi-response.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  sleep,
  startHarness,
  task,
  until,
  type Harness,
  type StreamEvent,
} from '../support/harness.js';

const A = KEYS.alice;
/** The bound of every task's event log here: small enough that a 40-token task overflows it. */
const MAX_EVENTS = 8;
const alice: Principal = { tenant: 'alice', keyId: 'alice', scopes: ['data'] };

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    sse: { max_events_per_task: MAX_EVENTS, cancel_on_disconnect: true },
    pools: [
      simPool('fast', 'vllm', { launch: { worker: 'sim', parallel: 4 } }),
      simPool('slow', 'vllm', { launch: { worker: 'sim', parallel: 4, sim: { tokens_per_s: 20 } } }),
    ],
  });
});
afterAll(() => h?.close());

const record = (id: string): ReturnType<Orchestrator['task']> => h.running.orchestrator.task(alice, id);

async function enqueue(
  model: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const body = task(model, { engine: 'vllm', ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: A, body, headers });
  expect(r.status).toBe(202);
  return { id: body.task_id, correlationId: r.headers.get('x-correlation-id') };
}

async function finished(model: string, maxTokens: number): Promise<string> {
  const { id } = await enqueue(model, { max_tokens: maxTokens });
  await until(() => record(id).terminal);
  return id;
}

/**
 * One stream read with a time limit (a stream that never closes fails the test instead of
 * hanging it), checked against the OpenAPI document like every other response.
 */
async function stream(
  id: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: unknown; events: StreamEvent[] }> {
  const res = await fetch(`${h.url}/v1/tasks/${id}/stream`, {
    headers: { authorization: `Bearer ${A}`, ...headers },
    signal: AbortSignal.timeout(5_000),
  });
  const raw = await res.text();
  const plain = Object.fromEntries(res.headers.entries());
  if (res.status !== 200) {
    const body = JSON.parse(raw) as unknown;
    expectValidResponse({
      method: 'GET',
      path: '/v1/tasks/{id}/stream',
      status: res.status,
      headers: plain,
      body,
    });
    return { status: res.status, headers: res.headers, body, events: [] };
  }
  // The SSE body is checked frame by frame below; the response object covers status and headers.
  expectValidResponse({
    method: 'GET',
    path: '/v1/tasks/{id}/stream',
    status: 200,
    headers: plain,
    body: undefined,
  });
  const events = parseSse(raw).map((r) => ({
    event: r.event ?? 'message',
    id: Number(r.id),
    data: JSON.parse(r.data) as Record<string, unknown>,
  }));
  for (const e of events) expectValidSseEvent(e.event, e.data);
  return { status: 200, headers: res.headers, body: raw, events };
}

describe('Last-Event-ID', () => {
  it('beyond a live task’s last event is a 400 INVALID_PARAMS naming the header and the last seq', async () => {
    const { id } = await enqueue('slow', { max_tokens: 1000 });
    await until(() => record(id).log.lastSeq >= 2);
    try {
      const r = await stream(id, { 'last-event-id': '5000' });
      expect(r.status).toBe(400);
      const env = r.body as { code: string; message: string; retriable: boolean };
      expect(env).toMatchObject({ code: 'INVALID_PARAMS', retriable: false });
      expect(env.message).toContain('Last-Event-ID');
      expect(env.message).toMatch(/last event is seq \d+/);
      expect(record(id).terminal).toBe(false);
    } finally {
      await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key: A });
    }
  });

  it('never hides the terminal event of an ended task, whatever the id', async () => {
    const id = await finished('fast', 3);
    const all = await stream(id);
    const last = all.events.at(-1);
    expect(last?.event).toBe('end');
    for (const after of [last!.id - 1, last!.id]) {
      const r = await stream(id, { 'last-event-id': String(after) });
      expect(r.status).toBe(200);
      expect(r.events).toEqual([last]);
    }
    // Beyond the terminal event there is nothing the task could have produced: a typed 400.
    for (const after of [last!.id + 1, 1_000_000]) {
      const r = await stream(id, { 'last-event-id': String(after) });
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'INVALID_PARAMS' });
    }
  });
});

describe('the bounded event window (sse.max_events_per_task)', () => {
  it('refuses a read of dropped events with 410 EVENTS_EXPIRED, then resumes knowingly without gaps', async () => {
    const id = await finished('fast', 40);
    const r = await stream(id);
    expect(r.status).toBe(410);
    const env = r.body as { code: string; message: string; retriable: boolean };
    expect(env).toMatchObject({ code: 'EVENTS_EXPIRED', retriable: false });
    const resumeAt = Number(/Last-Event-ID: (\d+)/.exec(env.message)?.[1]);
    expect(resumeAt).toBe(record(id).log.lastSeq - (MAX_EVENTS - 1));

    expect((await stream(id, { 'last-event-id': String(resumeAt - 1) })).status).toBe(410);
    const rest = await stream(id, { 'last-event-id': String(resumeAt) });
    expect(rest.status).toBe(200);
    expect(rest.events.map((e) => e.id)).toEqual(rest.events.map((_, k) => resumeAt + 1 + k));
    expect(rest.events.at(-1)?.event).toBe('end');
    const tokens = rest.events.filter((e) => e.event === 'token').map((e) => e.data['i'] as number);
    expect(tokens).toEqual(tokens.map((_, k) => (tokens[0] ?? 0) + k));
    expect(tokens.at(-1)).toBe(39);
  });

  it('serves a task that fits the window in full', async () => {
    const id = await finished('fast', 3);
    const r = await stream(id);
    // Periodic metrics frames may interleave on a loaded machine; the rest is the whole stream.
    const events = r.events.map((e) => e.event).filter((e) => e !== 'metrics');
    expect(events).toEqual(['started', 'token', 'token', 'token', 'end']);
    expect(r.events.map((e) => e.id)).toEqual(r.events.map((_, k) => k + 1));
  });
});

describe('correlation id', () => {
  it('the stream carries the task’s correlation id, not the reader’s', async () => {
    const given = await enqueue('fast', { max_tokens: 2 }, { 'x-correlation-id': 'task-corr-7' });
    const r = await stream(given.id, { 'x-correlation-id': 'reader-corr-9' });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-correlation-id')).toBe('task-corr-7');

    const generated = await enqueue('fast', { max_tokens: 2 });
    expect(generated.correlationId).toBeTruthy();
    const r2 = await stream(generated.id);
    expect(r2.headers.get('x-correlation-id')).toBe(generated.correlationId);
  });
});

describe('sse.cancel_on_disconnect', () => {
  /** Opens a stream and waits for its first token; aborting the controller disconnects. */
  async function watch(id: string): Promise<{ leave: () => void; next: () => Promise<string> }> {
    const ac = new AbortController();
    const res = await fetch(`${h.url}/v1/tasks/${id}/stream`, {
      headers: { authorization: `Bearer ${A}`, 'last-event-id': String(record(id).log.lastSeq) },
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const next = async (): Promise<string> => {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream of ${id} closed early`);
      return decoder.decode(value);
    };
    while (!(await next()).includes('event: token'));
    return { leave: () => ac.abort(), next };
  }

  it('cancels only when the last reader of the task has left', async () => {
    const { id } = await enqueue('slow', { max_tokens: 1000 });
    await until(() => record(id).log.lastSeq >= 2);
    const first = await watch(id);
    const second = await watch(id);

    first.leave();
    await sleep(300);
    expect(record(id).terminal).toBe(false);
    // The remaining reader still gets tokens, not a canceled end.
    let seen = '';
    while (!seen.includes('event: token')) seen += await second.next();
    expect(seen).not.toContain('event: end');

    second.leave();
    await until(() => record(id).terminal, 5_000);
    expect(record(id).state.kind).toBe('canceled');
  });
});
