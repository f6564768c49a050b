/**
 * Consumer contracts of the typed client (SPEC §16): every endpoint and every status code the
 * server can answer it with. Each entry is one Pact interaction plus what the client must make
 * of the answer; the provider suite replays the same file against a real orchestrator.
 */
import { createHash } from 'node:crypto';
import { MatchersV3 as M, type V3Request, type V3Response } from '@pact-foundation/pact';
import { expect } from 'vitest';
import { canonicalJson } from '../../src/artifacts/artifact-registry.js';
import { OrchHttpError, type OrchClient, type TaskEvent, type TaskRequest } from '../../src/index.js';
import type { PactInteraction } from './pact-runner.js';
import { SUCCESS_STREAM, errorStream, transcript } from './sse-transcripts.js';
import { toolInteractions } from './tool-interactions.js';

export const PACT_KEYS = {
  alice: 'alice-data-key',
  ops: 'ops-control-key',
  limited: 'limited-tenant-key',
  /** Only the `metrics` scope (`metrics.require_key` is on in the provider). */
  scraper: 'scraper-metrics-key',
  /** A control key limited to the pool `pact-drain` (`auth.keys[].pools`). */
  poolOps: 'pool-ops-control-key',
};
/** A key the provider does not know. */
export const UNKNOWN_KEY = 'not-a-configured-key';
export const PACT_DIR = '/tmp/llorch-pact';

export interface Clients {
  readonly alice: OrchClient;
  readonly ops: OrchClient;
  readonly limited: OrchClient;
  readonly anonymous: OrchClient;
  readonly scraper: OrchClient;
  readonly poolOps: OrchClient;
  /** Sends `UNKNOWN_KEY`. */
  readonly unknown: OrchClient;
}

export type Interaction = PactInteraction<Clients>;

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const CID = {
  'X-Correlation-Id': M.regex('^[A-Za-z0-9._:-]{1,128}$', '5d1e3c9a-7f0b-4d2e-8a61-0c9b2f4e7a13'),
};
const JSON_CT = { 'Content-Type': 'application/json; charset=utf-8' };
const SSE_CT = { 'Content-Type': 'text/event-stream; charset=utf-8' };

function envelope(
  status: number,
  code: string,
  retriable: boolean,
  extra: Record<string, unknown> = {},
  headers: Record<string, unknown> = {},
): V3Response {
  return {
    status,
    headers: { ...JSON_CT, ...CID, ...headers },
    body: { code, message: M.string(`${code.toLowerCase()} explained`), retriable, ...extra },
  };
}

async function fails(p: Promise<unknown>, status: number, code: string): Promise<OrchHttpError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OrchHttpError);
  const e = err as OrchHttpError;
  expect([e.status, e.code]).toEqual([status, code]);
  expect(e.correlationId).toBeTruthy();
  return e;
}

async function collect(it: AsyncIterable<TaskEvent>): Promise<TaskEvent[]> {
  const out: TaskEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const task = (n: number, extra: Partial<TaskRequest> = {}): TaskRequest => ({
  task_id: uuid(n),
  session_id: uuid(1000 + n),
  workload: 'completion',
  model_ref: 'pact-sim',
  engine: 'vllm',
  ctx: 2048,
  priority: 'interactive',
  prompt: 'Once upon a time',
  max_tokens: 4,
  deadline_ms: 60_000,
  ...extra,
});
const post = (path: string, body: unknown, key?: string): V3Request => ({
  method: 'POST',
  path,
  headers: { 'Content-Type': 'application/json', ...(key === undefined ? {} : bearer(key)) },
  body: body,
});
const get = (path: string, key?: string, headers: Record<string, string> = {}): V3Request => ({
  method: 'GET',
  path,
  headers: { ...(key === undefined ? {} : bearer(key)), ...headers },
});
const ok = (status: number, body: unknown): V3Response => ({
  status,
  headers: { ...JSON_CT, ...CID },
  body: body,
});

const artifactContent = { steps: ['plan', 'act'], budget: 3 };
const artifactId = `sha256:${createHash('sha256')
  .update(canonicalJson({ kind: 'plan', content: artifactContent, parent: null }))
  .digest('hex')}`;
const A = PACT_KEYS.alice;
const O = PACT_KEYS.ops;

const dataPlane: Interaction[] = [
  {
    state: 'pools are ready',
    description: 'an enqueue of a valid task',
    request: post('/v1/tasks', task(1), A),
    response: ok(202, {
      task_id: uuid(1),
      queue_position: M.integer(0),
      predicted_start_ms: M.integer(12),
      backoff_ms: M.integer(0),
    }),
    run: async (c) => {
      const a = await c.alice.enqueue(task(1));
      expect(a.task_id).toBe(uuid(1));
      expect(a.queue_position).toBeGreaterThanOrEqual(0);
    },
  },
  {
    description: 'an enqueue with an invalid ctx',
    request: post('/v1/tasks', task(2, { ctx: 0 }), A),
    response: envelope(400, 'INVALID_PARAMS', false),
    run: async (c) => void (await fails(c.alice.enqueue(task(2, { ctx: 0 })), 400, 'INVALID_PARAMS')),
  },
  {
    description: 'an enqueue without credentials',
    request: post('/v1/tasks', task(3)),
    response: envelope(401, 'UNAUTHORIZED', false, {}, { 'WWW-Authenticate': M.regex('^Bearer', 'Bearer') }),
    run: async (c) => void (await fails(c.anonymous.enqueue(task(3)), 401, 'UNAUTHORIZED')),
  },
  {
    description: 'an enqueue with a control-plane key',
    request: post('/v1/tasks', task(4), O),
    response: envelope(403, 'FORBIDDEN', false),
    run: async (c) => void (await fails(c.ops.enqueue(task(4)), 403, 'FORBIDDEN')),
  },
  {
    state: 'model is Deprecated',
    params: { model_id: 'pact-old', path: `${PACT_DIR}/pact-old.gguf` },
    description: 'an enqueue for a Deprecated model',
    request: post('/v1/tasks', task(5, { model_ref: 'pact-old' }), A),
    response: envelope(409, 'MODEL_DEPRECATED', false, { engine: 'vllm', pool_id: 'pact-old' }),
    run: async (c) =>
      void (await fails(c.alice.enqueue(task(5, { model_ref: 'pact-old' })), 409, 'MODEL_DEPRECATED')),
  },
  {
    description: 'an enqueue whose body exceeds the size limit',
    request: post('/v1/tasks', task(6, { prompt: 'x'.repeat(20_000) }), A),
    response: envelope(413, 'PAYLOAD_TOO_LARGE', false),
    run: async (c) =>
      void (await fails(c.alice.enqueue(task(6, { prompt: 'x'.repeat(20_000) })), 413, 'PAYLOAD_TOO_LARGE')),
  },
  {
    state: 'the pool has measured its decode rate',
    params: { model_ref: 'pact-slow', max_tokens: 3 },
    description: 'an enqueue whose deadline cannot be met',
    request: post('/v1/tasks', task(7, { model_ref: 'pact-slow', max_tokens: 1000, deadline_ms: 1 }), A),
    response: envelope(422, 'DEADLINE_UNMET', false, { engine: 'vllm', pool_id: 'pact-slow' }),
    run: async (c) =>
      void (await fails(
        c.alice.enqueue(task(7, { model_ref: 'pact-slow', max_tokens: 1000, deadline_ms: 1 })),
        422,
        'DEADLINE_UNMET',
      )),
  },
  {
    state: 'the queue of a drop-lru pool is full of interactive work',
    params: { model_ref: 'pact-full' },
    description: 'a batch enqueue to a full drop-lru queue',
    request: post('/v1/tasks', task(8, { model_ref: 'pact-full', priority: 'batch' }), A),
    response: envelope(
      429,
      'QUEUE_FULL_DROP_LRU',
      true,
      { engine: 'vllm', pool_id: 'pact-full', retry_after_ms: M.integer(500), policy_label: 'drop-lru' },
      { 'Retry-After': M.regex('^[1-9][0-9]*$', '1'), 'X-Backoff-Ms': M.regex('^[0-9]+$', '500') },
    ),
    run: async (c) => {
      const e = await fails(
        c.alice.enqueue(task(8, { model_ref: 'pact-full', priority: 'batch' })),
        429,
        'QUEUE_FULL_DROP_LRU',
      );
      expect(e.retriable).toBe(true);
      expect(e.envelope?.policy_label).toBe('drop-lru');
    },
  },
  {
    state: 'tenant has used up its rate limit',
    params: { tenant: 'limited', model_ref: 'pact-sim' },
    description: 'an enqueue over the tenant rate limit',
    request: post('/v1/tasks', task(9), PACT_KEYS.limited),
    response: envelope(
      429,
      'ADMISSION_REJECT',
      true,
      { engine: 'vllm', pool_id: 'pact-sim', retry_after_ms: M.integer(1000), policy_label: 'reject' },
      { 'Retry-After': M.regex('^[1-9][0-9]*$', '1'), 'X-Backoff-Ms': M.regex('^[0-9]+$', '1000') },
    ),
    run: async (c) => void (await fails(c.limited.enqueue(task(9)), 429, 'ADMISSION_REJECT')),
  },
  {
    state: 'pool is unavailable',
    params: { pool_id: 'pact-down' },
    description: 'an enqueue to an unavailable pool',
    request: post('/v1/tasks', task(10, { model_ref: 'pact-down' }), A),
    response: envelope(503, 'POOL_UNAVAILABLE', true, { engine: 'vllm', pool_id: 'pact-down' }),
    run: async (c) => {
      const e = await fails(c.alice.enqueue(task(10, { model_ref: 'pact-down' })), 503, 'POOL_UNAVAILABLE');
      expect(e.retriable).toBe(true);
    },
  },
  {
    state: 'the next request fails with an internal error',
    description: 'an enqueue that meets an internal fault',
    request: post('/v1/tasks', task(11), A),
    response: envelope(500, 'INTERNAL', false),
    run: async (c) => void (await fails(c.alice.enqueue(task(11)), 500, 'INTERNAL')),
  },
  {
    state: 'a task that has finished',
    params: { task_id: uuid(12), model_ref: 'pact-sim', max_tokens: 4 },
    description: 'a stream of a finished task',
    request: get(`/v1/tasks/${uuid(12)}/stream`, A, { Accept: 'text/event-stream' }),
    response: {
      status: 200,
      headers: {
        ...SSE_CT,
        ...CID,
      },
      body: transcript([
        ['started', { queue_position: 0, predicted_start_ms: 3 }],
        ['token', { t: 'Hel', i: 0 }],
        ['token', { t: 'lo', i: 1 }],
        ['metrics', { queue_depth: 0, on_time_probability: 0.99, kv_warmth: false }],
        ['token', { t: ' wor', i: 2 }],
        ['token', { t: 'ld', i: 3 }],
        ['end', { tokens_out: 4, decode_ms: 2.5 }],
      ]),
    },
    bodyRegex: SUCCESS_STREAM,
    run: async (c) => {
      const events = await collect(c.alice.streamTask(uuid(12)));
      expect(events.map((e) => e.event)).toEqual([
        'started',
        'token',
        'token',
        'metrics',
        'token',
        'token',
        'end',
      ]);
      expect(
        events
          .filter((e) => e.event === 'token')
          .map((e) => e.data.t)
          .join(''),
      ).toBe('Hello world');
    },
  },
  {
    state: 'a task that failed mid-stream',
    params: { task_id: uuid(13), model_ref: 'pact-timeout', max_tokens: 400 },
    description: 'a stream of a task that failed',
    request: get(`/v1/tasks/${uuid(13)}/stream`, A, { Accept: 'text/event-stream' }),
    response: {
      status: 200,
      headers: {
        ...SSE_CT,
        ...CID,
      },
      body: transcript([
        ['started', { queue_position: 0, predicted_start_ms: 3 }],
        ['token', { t: 'Hel', i: 0 }],
        ['error', { code: 'DECODE_TIMEOUT', message: 'wall timeout of 300 ms exceeded', retriable: true }],
      ]),
    },
    bodyRegex: errorStream('DECODE_TIMEOUT'),
    run: async (c) => {
      const events = await collect(c.alice.streamTask(uuid(13)));
      const last = events.at(-1);
      expect(last?.event === 'error' && last.data.code).toBe('DECODE_TIMEOUT');
    },
  },
  {
    description: 'a stream of an unknown task',
    request: get(`/v1/tasks/${uuid(14)}/stream`, A, { Accept: 'text/event-stream' }),
    response: envelope(404, 'NOT_FOUND', false),
    run: async (c) => void (await fails(c.alice.streamTask(uuid(14)).next(), 404, 'NOT_FOUND')),
  },
  {
    description: 'a stream without credentials',
    request: get(`/v1/tasks/${uuid(15)}/stream`, undefined, { Accept: 'text/event-stream' }),
    response: envelope(401, 'UNAUTHORIZED', false),
    run: async (c) => void (await fails(c.anonymous.streamTask(uuid(15)).next(), 401, 'UNAUTHORIZED')),
  },
  {
    state: 'a running task',
    params: { task_id: uuid(22), model_ref: 'pact-slow', max_tokens: 1000 },
    description: 'a stream resumed after an event the task has not sent',
    request: get(`/v1/tasks/${uuid(22)}/stream`, A, {
      Accept: 'text/event-stream',
      'Last-Event-ID': '1000000',
    }),
    response: envelope(400, 'INVALID_PARAMS', false, {
      message: M.regex(
        '^Last-Event-ID [0-9]+ is beyond .*',
        'Last-Event-ID 1000000 is beyond the stream: its last event is seq 3',
      ),
    }),
    run: async (c) =>
      void (await fails(
        c.alice.streamTask(uuid(22), { lastEventId: 1_000_000 }).next(),
        400,
        'INVALID_PARAMS',
      )),
  },
  {
    state: 'a finished task whose early events were dropped',
    params: { task_id: uuid(23), model_ref: 'pact-sim', max_tokens: 64 },
    description: 'a stream of a task whose early events are no longer retained',
    request: get(`/v1/tasks/${uuid(23)}/stream`, A, { Accept: 'text/event-stream' }),
    response: envelope(410, 'EVENTS_EXPIRED', false, {
      message: M.regex(
        '.*resume with Last-Event-ID: [0-9]+$',
        'events 2..50 are no longer retained; to continue without them, resume with Last-Event-ID: 50',
      ),
    }),
    run: async (c) => {
      const e = await fails(c.alice.streamTask(uuid(23)).next(), 410, 'EVENTS_EXPIRED');
      expect(e.retriable).toBe(false);
      // The refusal tells the client where it can knowingly resume.
      expect(e.message).toMatch(/Last-Event-ID: 50/);
    },
  },
  {
    state: 'a running task',
    params: { task_id: uuid(16), model_ref: 'pact-slow', max_tokens: 1000 },
    description: 'a cancel of a running task',
    request: { method: 'POST', path: `/v1/tasks/${uuid(16)}/cancel`, headers: bearer(A) },
    response: { status: 204 },
    run: (c) => c.alice.cancel(uuid(16)),
  },
  {
    state: 'a running task',
    params: { task_id: uuid(30), model_ref: 'pact-slow', max_tokens: 1000 },
    description: 'a listing of the running tasks of a pool',
    request: { ...get('/v1/tasks', A), query: { state: 'running', pool: 'pact-slow' } },
    response: ok(200, {
      tasks: M.eachLike({
        task_id: M.string(uuid(30)),
        tenant: 'alice',
        session_id: M.string(uuid(1030)),
        pool_id: 'pact-slow',
        model_ref: 'pact-slow',
        priority: M.regex('^(interactive|batch)$', 'interactive'),
        state: M.regex('^(dispatched|streaming)$', 'streaming'),
        replica_id: M.string('pact-slow-r0'),
        deadline_ms: M.integer(60_000),
        accepted_at_ms: M.integer(1_764_600_000_000),
        started_at_ms: M.integer(1_764_600_000_010),
        tokens_out: M.integer(3),
      }),
    }),
    run: async (c) => {
      const { tasks } = await c.alice.listTasks({ state: 'running', pool: 'pact-slow' });
      expect(tasks.length).toBeGreaterThan(0);
      for (const t of tasks) expect([t.tenant, t.pool_id]).toEqual(['alice', 'pact-slow']);
    },
  },
  {
    description: 'a listing of tasks in an unknown state',
    request: { ...get('/v1/tasks', A), query: { state: 'sleeping' } },
    response: envelope(400, 'INVALID_PARAMS', false),
    run: async (c) =>
      void (await fails(
        c.alice.listTasks({ state: 'sleeping' as unknown as 'queued' }),
        400,
        'INVALID_PARAMS',
      )),
  },
  {
    description: 'a cancel of an unknown task',
    request: { method: 'POST', path: `/v1/tasks/${uuid(17)}/cancel`, headers: bearer(A) },
    response: envelope(404, 'NOT_FOUND', false),
    run: async (c) => void (await fails(c.alice.cancel(uuid(17)), 404, 'NOT_FOUND')),
  },
  {
    state: 'a session with one finished turn',
    params: { task_id: uuid(18), session_id: uuid(1018), model_ref: 'pact-sim' },
    description: 'a read of a session',
    request: get(`/v1/sessions/${uuid(1018)}`, A),
    response: ok(200, {
      session_id: uuid(1018),
      ttl_ms_remaining: M.integer(590_000),
      turns: 1,
      kv_bytes: M.integer(4096),
      kv_warmth: M.boolean(true),
      tokens_used: M.integer(12),
      time_used_ms: M.integer(3),
      cost_used: M.number(0),
    }),
    run: async (c) => {
      const s = await c.alice.getSession(uuid(1018));
      expect(s.turns).toBe(1);
    },
  },
  {
    state: 'a session with one finished turn',
    params: { task_id: uuid(40), session_id: uuid(1040), model_ref: 'pact-sim' },
    description: 'a listing of sessions',
    request: get('/v1/sessions', A),
    response: ok(200, {
      sessions: M.eachLike({
        session_id: M.string(uuid(1040)),
        ttl_ms_remaining: M.integer(590_000),
        turns: M.integer(1),
        kv_bytes: M.integer(4096),
        kv_warmth: M.boolean(true),
        tokens_used: M.integer(12),
        time_used_ms: M.integer(3),
        cost_used: M.number(0),
      }),
    }),
    run: async (c) => {
      const { sessions } = await c.alice.listSessions();
      expect(sessions.map((s) => s.session_id)).toContain(uuid(1040));
    },
  },
  {
    description: 'a listing of sessions with a limit out of range',
    request: { ...get('/v1/sessions', A), query: { limit: '0' } },
    response: envelope(400, 'INVALID_PARAMS', false),
    run: async (c) => void (await fails(c.alice.listSessions({ limit: 0 }), 400, 'INVALID_PARAMS')),
  },
  {
    description: 'a read of an unknown session',
    request: get(`/v1/sessions/${uuid(1019)}`, A),
    response: envelope(404, 'NOT_FOUND', false),
    run: async (c) => void (await fails(c.alice.getSession(uuid(1019)), 404, 'NOT_FOUND')),
  },
  {
    state: 'a session with one finished turn',
    params: { task_id: uuid(20), session_id: uuid(1020), model_ref: 'pact-sim' },
    description: 'a delete of a session',
    request: { method: 'DELETE', path: `/v1/sessions/${uuid(1020)}`, headers: bearer(A) },
    response: { status: 204 },
    run: (c) => c.alice.deleteSession(uuid(1020)),
  },
  {
    description: 'a delete of an unknown session',
    request: { method: 'DELETE', path: `/v1/sessions/${uuid(1021)}`, headers: bearer(A) },
    response: envelope(404, 'NOT_FOUND', false),
    run: async (c) => void (await fails(c.alice.deleteSession(uuid(1021)), 404, 'NOT_FOUND')),
  },
  {
    state: 'pools are ready',
    description: 'a scrape of the metrics',
    request: get('/metrics', PACT_KEYS.scraper),
    response: {
      status: 200,
      headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' },
      body: '# TYPE tasks_enqueued_total counter\n',
    },
    bodyRegex: '^[\\s\\S]*# TYPE tasks_enqueued_total counter[\\s\\S]*$',
    run: async (c) => expect(await c.scraper.metrics()).toContain('tasks_enqueued_total'),
  },
  {
    state: 'an identical enqueue of the task has ended',
    params: { request: task(24) },
    description: 'an identical resubmission of an ended task',
    request: post('/v1/tasks', task(24), A),
    response: ok(200, {
      task_id: uuid(24),
      queue_position: M.integer(0),
      predicted_start_ms: M.integer(0),
      backoff_ms: M.integer(0),
    }),
    run: async (c) => expect((await c.alice.enqueue(task(24))).task_id).toBe(uuid(24)),
  },
];

function controlPlaneInteractions(): Interaction[] {
  const model = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    source: M.string(`${PACT_DIR}/${id}.gguf`),
    digest: M.regex('^sha256:[0-9a-f]{64}$', `sha256:${'a'.repeat(64)}`),
    state: M.string('Draft'),
    ...extra,
  });
  const file = (name: string) => ({ path: `${PACT_DIR}/${name}` });
  return [
    {
      state: 'pools are ready',
      description: 'a drain of a pool',
      request: post('/v1/pools/pact-drain/drain', { deadline_ms: 5000 }, O),
      response: ok(202, { pool_id: 'pact-drain', operation: 'drain', deadline_ms: 5000 }),
      run: async (c) => expect((await c.ops.drainPool('pact-drain', 5000)).operation).toBe('drain'),
    },
    {
      description: 'a drain of an unknown pool',
      request: post('/v1/pools/nope/drain', { deadline_ms: 5000 }, O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.drainPool('nope', 5000), 404, 'NOT_FOUND')),
    },
    {
      description: 'a drain with a negative deadline',
      request: post('/v1/pools/pact-drain/drain', { deadline_ms: -1 }, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) => void (await fails(c.ops.drainPool('pact-drain', -1), 400, 'INVALID_PARAMS')),
    },
    {
      description: 'a drain with a data-plane key',
      request: post('/v1/pools/pact-drain/drain', { deadline_ms: 5000 }, A),
      response: envelope(403, 'FORBIDDEN', false),
      run: async (c) => void (await fails(c.alice.drainPool('pact-drain', 5000), 403, 'FORBIDDEN')),
    },
    {
      description: 'a drain without credentials',
      request: post('/v1/pools/pact-drain/drain', { deadline_ms: 5000 }),
      response: envelope(401, 'UNAUTHORIZED', false),
      run: async (c) => void (await fails(c.anonymous.drainPool('pact-drain', 5000), 401, 'UNAUTHORIZED')),
    },
    {
      state: 'a model file exists',
      params: file('reload-b.bin'),
      description: 'a reload of a pool to a new model',
      request: post(
        '/v1/pools/pact-reload/reload',
        { new_model_ref: `${PACT_DIR}/reload-b.bin`, deadline_ms: 5000 },
        O,
      ),
      response: ok(202, { pool_id: 'pact-reload', operation: 'reload', deadline_ms: 5000 }),
      run: async (c) =>
        expect(
          (await c.ops.reloadPool('pact-reload', { new_model_ref: `${PACT_DIR}/reload-b.bin` }, 5000))
            .operation,
        ).toBe('reload'),
    },
    {
      description: 'a reload without a target',
      request: post('/v1/pools/pact-reload/reload', {}, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        void (await fails(
          c.ops.send({ method: 'POST', path: '/v1/pools/pact-reload/reload', body: {}, idempotent: false }),
          400,
          'INVALID_PARAMS',
        )),
    },
    {
      description: 'a reload of an unknown pool',
      request: post('/v1/pools/nope/reload', { rollback: true }, O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.reloadPool('nope', { rollback: true }), 404, 'NOT_FOUND')),
    },
    {
      description: 'a rollback of a pool that was never reloaded',
      request: post('/v1/pools/pact-sim/reload', { rollback: true }, O),
      response: envelope(409, 'CONFLICT', false, { pool_id: 'pact-sim' }),
      run: async (c) => void (await fails(c.ops.reloadPool('pact-sim', { rollback: true }), 409, 'CONFLICT')),
    },
    {
      state: 'pools are ready',
      description: 'a health read of a pool',
      request: get('/v1/pools/pact-sim/health', O),
      response: ok(200, {
        pool_id: 'pact-sim',
        live: true,
        ready: true,
        draining: false,
        metrics: M.like({ queue_depth: 0, replicas_ready: 1, slots_total: 4, slots_free: 4 }),
        engine_version: M.string('sim-vllm-1'),
      }),
      run: async (c) => expect((await c.ops.poolHealth('pact-sim')).ready).toBe(true),
    },
    {
      description: 'a health read of an unknown pool',
      request: get('/v1/pools/nope/health', O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.poolHealth('nope'), 404, 'NOT_FOUND')),
    },
    {
      state: 'pools are ready',
      description: 'a list of replica sets',
      request: get('/v1/replicasets', O),
      response: ok(200, {
        replica_sets: M.eachLike({
          id: M.string('pact-sim'),
          engine: M.string('vllm'),
          model_id: M.string('pact-sim'),
          engine_version: M.string('sim-vllm-1'),
          ctx: M.integer(2048),
          slots_total: M.integer(4),
          slots_free: M.integer(4),
          load: M.number(0),
        }),
      }),
      run: async (c) => expect((await c.ops.replicaSets()).replica_sets.length).toBeGreaterThan(0),
    },
    {
      state: 'the node is registered',
      params: { node_id: 'pact-node' },
      description: 'a list of nodes',
      request: get('/v1/nodes', O),
      response: ok(200, {
        nodes: M.eachLike({
          node_id: M.string('pact-node'),
          state: M.string('up'),
          pools: [],
          gpus: M.integer(0),
          gpu_stale: M.boolean(false),
        }),
      }),
      run: async (c) => expect((await c.ops.listNodes()).nodes.map((n) => n.node_id)).toContain('pact-node'),
    },
    {
      state: 'the next request fails with an internal error',
      description: 'a list of replica sets that meets an internal fault',
      request: get('/v1/replicasets', O),
      response: envelope(500, 'INTERNAL', false),
      run: async (c) => void (await fails(c.ops.replicaSets(), 500, 'INTERNAL')),
    },
    {
      description: 'a list of catalog models with a data-plane key',
      request: get('/v1/catalog/models', A),
      response: envelope(403, 'FORBIDDEN', false),
      run: async (c) => void (await fails(c.alice.listCatalogModels(), 403, 'FORBIDDEN')),
    },
    {
      description: 'a list of replica sets with a data-plane key',
      request: get('/v1/replicasets', A),
      response: envelope(403, 'FORBIDDEN', false),
      run: async (c) => void (await fails(c.alice.replicaSets(), 403, 'FORBIDDEN')),
    },
    {
      description: 'a read of the capabilities',
      request: get('/v1/capabilities', O),
      response: ok(200, {
        api_version: '1.1.0',
        engines: M.eachLike({
          engine: M.string('vllm'),
          ctx_max: M.integer(2048),
          supported_workloads: M.eachLike('completion'),
          rate_limits: M.like({}),
          features: M.like({}),
        }),
      }),
      run: async (c) => expect((await c.ops.capabilities()).api_version).toBe('1.1.0'),
    },
    {
      description: 'a read of the capabilities without credentials',
      request: get('/v1/capabilities'),
      response: envelope(401, 'UNAUTHORIZED', false),
      run: async (c) => void (await fails(c.anonymous.capabilities(), 401, 'UNAUTHORIZED')),
    },
    {
      description: 'a reload of a policy plugin',
      request: post('/v1/plugins/pact-plugin/reload', {}, O),
      response: ok(200, {
        id: 'pact-plugin',
        version: M.string('1.0.0'),
        abi: 1,
        hooks: ['admission'],
        state: 'active',
        sha256: M.regex('^[0-9a-f]{64}$', 'a'.repeat(64)),
        loaded_at: M.string('2026-01-05T12:00:00.000Z'),
        budget_ms: M.number(1000),
        memory_max_bytes: M.integer(65536),
        counters: M.like({
          calls: 0,
          ok: 0,
          fallbacks: 0,
          skipped: 0,
          timeouts: 0,
          traps: 0,
          malformed: 0,
          busy: 0,
          consecutive_failures: 0,
        }),
      }),
      run: async (c) => expect((await c.ops.reloadPlugin('pact-plugin')).state).toBe('active'),
    },
    {
      description: 'a reload of a policy plugin with a malformed pin',
      request: post('/v1/plugins/pact-plugin/reload', { sha256: 'nope' }, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        void (await fails(c.ops.reloadPlugin('pact-plugin', { sha256: 'nope' }), 400, 'INVALID_PARAMS')),
    },
    {
      description: 'a reload of an unknown policy plugin',
      request: post('/v1/plugins/nope/reload', {}, O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.reloadPlugin('nope'), 404, 'NOT_FOUND')),
    },
    {
      description: 'a reload of a policy plugin to a pin its module does not have',
      request: post('/v1/plugins/pact-plugin/reload', { sha256: '0'.repeat(64) }, O),
      response: envelope(409, 'CONFLICT', false),
      run: async (c) =>
        void (await fails(c.ops.reloadPlugin('pact-plugin', { sha256: '0'.repeat(64) }), 409, 'CONFLICT')),
    },
    {
      description: 'a list of policy plugins',
      request: get('/v1/plugins', O),
      response: ok(200, { plugins: M.like([]) }),
      run: async (c) => expect(Array.isArray((await c.ops.listPlugins()).plugins)).toBe(true),
    },
    {
      state: 'catalog model exists',
      params: { id: 'pact-known', ...file('pact-known.gguf') },
      description: 'a list of catalog models',
      request: get('/v1/catalog/models', O),
      response: ok(200, { models: M.eachLike(model('pact-known')) }),
      run: async (c) => expect((await c.ops.listCatalogModels()).models.length).toBeGreaterThan(0),
    },
    {
      state: 'a model file exists',
      params: file('pact-new.gguf'),
      description: 'a registration of a catalog model',
      request: post('/v1/catalog/models', { id: 'pact-new', source: `${PACT_DIR}/pact-new.gguf` }, O),
      response: ok(201, model('pact-new', { state: 'Draft' })),
      run: async (c) =>
        expect(
          (await c.ops.createCatalogModel({ id: 'pact-new', source: `${PACT_DIR}/pact-new.gguf` })).state,
        ).toBe('Draft'),
    },
    {
      description: 'a registration of a catalog model without a source',
      request: post('/v1/catalog/models', { id: 'pact-bad' }, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        void (await fails(
          c.ops.send({
            method: 'POST',
            path: '/v1/catalog/models',
            body: { id: 'pact-bad' },
            idempotent: false,
          }),
          400,
          'INVALID_PARAMS',
        )),
    },
    {
      state: 'catalog model exists',
      params: { id: 'pact-dup', ...file('pact-dup.gguf') },
      description: 'a registration of a catalog model that already exists',
      request: post('/v1/catalog/models', { id: 'pact-dup', source: `${PACT_DIR}/pact-dup.gguf` }, O),
      response: envelope(409, 'CONFLICT', false),
      run: async (c) =>
        void (await fails(
          c.ops.createCatalogModel({ id: 'pact-dup', source: `${PACT_DIR}/pact-dup.gguf` }),
          409,
          'CONFLICT',
        )),
    },
    {
      state: 'catalog model exists',
      params: { id: 'pact-known', ...file('pact-known.gguf') },
      description: 'a read of a catalog model',
      request: get('/v1/catalog/models/pact-known', O),
      response: ok(200, model('pact-known')),
      run: async (c) => expect((await c.ops.getCatalogModel('pact-known')).id).toBe('pact-known'),
    },
    {
      description: 'a read of an unknown catalog model',
      request: get('/v1/catalog/models/nope', O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.getCatalogModel('nope'), 404, 'NOT_FOUND')),
    },
    {
      state: 'catalog model exists',
      params: { id: 'pact-known', ...file('pact-known.gguf') },
      description: 'a verification of a catalog model',
      request: { method: 'POST', path: '/v1/catalog/models/pact-known/verify', headers: bearer(O) },
      response: ok(200, { id: 'pact-known', result: M.regex('^(verified|failed)$', 'verified') }),
      run: async (c) => expect((await c.ops.verifyCatalogModel('pact-known')).id).toBe('pact-known'),
    },
    {
      description: 'a verification of an unknown catalog model',
      request: { method: 'POST', path: '/v1/catalog/models/nope/verify', headers: bearer(O) },
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.verifyCatalogModel('nope'), 404, 'NOT_FOUND')),
    },
    {
      state: 'catalog model exists',
      params: { id: 'pact-lifecycle', ...file('pact-lifecycle.gguf') },
      description: 'a lifecycle change of a catalog model',
      request: post('/v1/catalog/models/pact-lifecycle/state', { state: 'Active' }, O),
      response: ok(200, model('pact-lifecycle', { state: 'Active' })),
      run: async (c) =>
        expect((await c.ops.setCatalogModelState('pact-lifecycle', { state: 'Active' })).state).toBe(
          'Active',
        ),
    },
    {
      state: 'catalog model is Retired',
      params: { id: 'pact-retired', ...file('pact-retired.gguf') },
      description: 'a lifecycle change the lifecycle forbids',
      request: post('/v1/catalog/models/pact-retired/state', { state: 'Active' }, O),
      response: envelope(409, 'CONFLICT', false),
      run: async (c) =>
        void (await fails(c.ops.setCatalogModelState('pact-retired', { state: 'Active' }), 409, 'CONFLICT')),
    },
    {
      description: 'a lifecycle change of an unknown catalog model',
      request: post('/v1/catalog/models/nope/state', { state: 'Active' }, O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) =>
        void (await fails(c.ops.setCatalogModelState('nope', { state: 'Active' }), 404, 'NOT_FOUND')),
    },
    {
      description: 'a store of an artifact',
      request: post('/v1/artifacts', { kind: 'summary', content: { text: 'three lines' } }, O),
      response: ok(201, {
        id: M.regex('^sha256:[0-9a-f]{64}$', `sha256:${'b'.repeat(64)}`),
        kind: 'summary',
        digest: M.regex('^sha256:[0-9a-f]{64}$', `sha256:${'c'.repeat(64)}`),
        created_ms: M.integer(1_700_000_000_000),
        tags: [],
      }),
      run: async (c) =>
        expect((await c.ops.createArtifact({ kind: 'summary', content: { text: 'three lines' } })).kind).toBe(
          'summary',
        ),
    },
    {
      description: 'a store of an artifact of an unknown kind',
      request: post('/v1/artifacts', { kind: 'poem', content: 'x' }, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        void (await fails(
          c.ops.send({
            method: 'POST',
            path: '/v1/artifacts',
            body: { kind: 'poem', content: 'x' },
            idempotent: false,
          }),
          400,
          'INVALID_PARAMS',
        )),
    },
    {
      description: 'a store of an artifact above the size limit',
      request: post('/v1/artifacts', { kind: 'trace', content: { log: 'y'.repeat(5000) } }, O),
      response: envelope(413, 'PAYLOAD_TOO_LARGE', false),
      run: async (c) =>
        void (await fails(
          c.ops.createArtifact({ kind: 'trace', content: { log: 'y'.repeat(5000) } }),
          413,
          'PAYLOAD_TOO_LARGE',
        )),
    },
    {
      state: 'an artifact exists',
      params: { kind: 'plan', content: artifactContent },
      description: 'a read of an artifact',
      request: get(`/v1/artifacts/${artifactId}`, O),
      response: ok(200, {
        id: artifactId,
        kind: 'plan',
        content: artifactContent,
        digest: M.regex('^sha256:[0-9a-f]{64}$', `sha256:${'d'.repeat(64)}`),
        tags: [],
      }),
      run: async (c) => expect((await c.ops.getArtifact(artifactId)).content).toEqual(artifactContent),
    },
    {
      description: 'a read of an unknown artifact',
      request: get(`/v1/artifacts/sha256:${'0'.repeat(64)}`, O),
      response: envelope(404, 'NOT_FOUND', false),
      run: async (c) => void (await fails(c.ops.getArtifact(`sha256:${'0'.repeat(64)}`), 404, 'NOT_FOUND')),
    },
    {
      state: 'an artifact exists',
      params: { kind: 'plan', content: artifactContent },
      description: 'a list of artifacts',
      request: { method: 'GET', path: '/v1/artifacts', query: { limit: '10' }, headers: bearer(O) },
      response: ok(200, {
        artifacts: M.eachLike({ id: M.regex('^sha256:[0-9a-f]{64}$', artifactId), kind: M.string('plan') }),
      }),
      run: async (c) =>
        expect((await c.ops.listArtifacts({ limit: 10 })).artifacts.length).toBeGreaterThan(0),
    },
  ];
}

/** An operation as the refusal interactions send it: with a given key, through the typed client. */
interface Operation {
  /** Names the interaction, e.g. `a cancel of a task`. */
  readonly name: string;
  readonly request: (key: string | undefined) => V3Request;
  readonly call: (client: OrchClient) => Promise<unknown>;
  /** A key of the operation's scope (for the internal fault). */
  readonly client: keyof Clients;
  /** 401: which credential is missing or wrong. */
  readonly unauthorized?: 'anonymous' | 'unknown';
  /** 403: a client whose key lacks the scope, and how the interaction names it. */
  readonly forbidden?: readonly [keyof Clients, string];
  /** 500: the next request meets an internal fault (`INTERNAL`). */
  readonly internal?: true;
}

const KEY_OF: Record<keyof Clients, string | undefined> = {
  alice: PACT_KEYS.alice,
  ops: PACT_KEYS.ops,
  limited: PACT_KEYS.limited,
  scraper: PACT_KEYS.scraper,
  poolOps: PACT_KEYS.poolOps,
  unknown: UNKNOWN_KEY,
  anonymous: undefined,
};

/** 401, 403 and 500 of every operation whose refusals the interactions above do not already show. */
function refusals(): Interaction[] {
  const action = (method: string, path: string) => (key: string | undefined) => ({
    method,
    path,
    headers: key === undefined ? {} : bearer(key),
  });
  const stream = uuid(30);
  const session = uuid(1031);
  const summary = { kind: 'summary' as const, content: { text: 'refused' } };
  const refusedModel = { id: 'pact-refused', source: `${PACT_DIR}/pact-refused.gguf` };
  const ops: Operation[] = [
    {
      name: 'a stream of a task',
      request: (k) => get(`/v1/tasks/${stream}/stream`, k, { Accept: 'text/event-stream' }),
      call: (c) => c.streamTask(stream).next(),
      client: 'alice',
      forbidden: ['ops', 'a control-plane key'],
      internal: true,
    },
    {
      name: 'a listing of tasks',
      request: (k) => get('/v1/tasks', k),
      call: (c) => c.listTasks(),
      client: 'alice',
      unauthorized: 'anonymous',
      forbidden: ['scraper', 'a key of neither plane'],
      internal: true,
    },
    {
      name: 'a cancel of a task',
      request: action('POST', `/v1/tasks/${stream}/cancel`),
      call: (c) => c.cancel(stream),
      client: 'alice',
      unauthorized: 'anonymous',
      forbidden: ['ops', 'a control-plane key'],
      internal: true,
    },
    {
      name: 'a listing of sessions',
      request: (k) => get('/v1/sessions', k),
      call: (c) => c.listSessions(),
      client: 'alice',
      unauthorized: 'anonymous',
      forbidden: ['ops', 'a control-plane key'],
      internal: true,
    },
    {
      name: 'a read of a session',
      request: (k) => get(`/v1/sessions/${session}`, k),
      call: (c) => c.getSession(session),
      client: 'alice',
      unauthorized: 'anonymous',
      forbidden: ['ops', 'a control-plane key'],
      internal: true,
    },
    {
      name: 'a delete of a session',
      request: action('DELETE', `/v1/sessions/${session}`),
      call: (c) => c.deleteSession(session),
      client: 'alice',
      unauthorized: 'unknown',
      forbidden: ['ops', 'a control-plane key'],
      internal: true,
    },
    {
      name: 'a scrape of the metrics',
      request: (k) => get('/metrics', k),
      call: (c) => c.metrics(),
      client: 'scraper',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a key without the metrics scope'],
    },
    {
      name: 'a drain of a pool',
      request: (k) => post('/v1/pools/pact-drain/drain', { deadline_ms: 5000 }, k),
      call: (c) => c.drainPool('pact-drain', 5000),
      client: 'ops',
      internal: true,
    },
    {
      name: 'a rollback of a pool',
      request: (k) => post('/v1/pools/pact-reload/reload', { rollback: true }, k),
      call: (c) => c.reloadPool('pact-reload', { rollback: true }),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['poolOps', 'a control key limited to other pools (auth.keys[].pools)'],
      internal: true,
    },
    {
      name: 'a health read of a pool',
      request: (k) => get('/v1/pools/pact-sim/health', k),
      call: (c) => c.poolHealth('pact-sim'),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a list of replica sets',
      request: (k) => get('/v1/replicasets', k),
      call: (c) => c.replicaSets(),
      client: 'ops',
      unauthorized: 'unknown',
    },
    {
      name: 'a list of nodes',
      request: (k) => get('/v1/nodes', k),
      call: (c) => c.listNodes(),
      client: 'ops',
      unauthorized: 'unknown',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a read of the capabilities',
      request: (k) => get('/v1/capabilities', k),
      call: (c) => c.capabilities(),
      client: 'ops',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a reload of a policy plugin',
      request: (k) => post('/v1/plugins/pact-plugin/reload', {}, k),
      call: (c) => c.reloadPlugin('pact-plugin'),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a list of policy plugins',
      request: (k) => get('/v1/plugins', k),
      call: (c) => c.listPlugins(),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a list of catalog models',
      request: (k) => get('/v1/catalog/models', k),
      call: (c) => c.listCatalogModels(),
      client: 'ops',
      unauthorized: 'unknown',
      internal: true,
    },
    {
      name: 'a registration of a catalog model',
      request: (k) => post('/v1/catalog/models', refusedModel, k),
      call: (c) => c.createCatalogModel(refusedModel),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a read of a catalog model',
      request: (k) => get('/v1/catalog/models/pact-known', k),
      call: (c) => c.getCatalogModel('pact-known'),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a verification of a catalog model',
      request: action('POST', '/v1/catalog/models/pact-known/verify'),
      call: (c) => c.verifyCatalogModel('pact-known'),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a lifecycle change of a catalog model',
      request: (k) => post('/v1/catalog/models/pact-known/state', { state: 'Active' }, k),
      call: (c) => c.setCatalogModelState('pact-known', { state: 'Active' }),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['alice', 'a data-plane key'],
      internal: true,
    },
    {
      name: 'a list of artifacts',
      request: (k) => ({
        method: 'GET',
        path: '/v1/artifacts',
        query: { limit: '10' },
        headers: k === undefined ? {} : bearer(k),
      }),
      call: (c) => c.listArtifacts({ limit: 10 }),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['scraper', 'a metrics-only key'],
      internal: true,
    },
    {
      name: 'a store of an artifact',
      request: (k) => post('/v1/artifacts', summary, k),
      call: (c) => c.createArtifact(summary),
      client: 'ops',
      unauthorized: 'anonymous',
      forbidden: ['scraper', 'a metrics-only key'],
      internal: true,
    },
    {
      name: 'a read of an artifact',
      request: (k) => get(`/v1/artifacts/${artifactId}`, k),
      call: (c) => c.getArtifact(artifactId),
      client: 'ops',
      unauthorized: 'unknown',
      forbidden: ['scraper', 'a metrics-only key'],
      internal: true,
    },
  ];
  const out: Interaction[] = [];
  for (const op of ops) {
    if (op.unauthorized !== undefined) {
      const who = op.unauthorized;
      out.push({
        description: `${op.name} ${who === 'anonymous' ? 'without credentials' : 'with an unknown key'}`,
        request: op.request(KEY_OF[who]),
        response: envelope(
          401,
          'UNAUTHORIZED',
          false,
          {},
          {
            // RFC 6750: a missing credential is a bare challenge, a wrong one says so.
            'WWW-Authenticate':
              who === 'anonymous'
                ? M.regex('^Bearer$', 'Bearer')
                : M.regex('^Bearer error="invalid_token"$', 'Bearer error="invalid_token"'),
          },
        ),
        run: async (c) => void (await fails(op.call(c[who]), 401, 'UNAUTHORIZED')),
      });
    }
    if (op.forbidden !== undefined) {
      const [who, label] = op.forbidden;
      out.push({
        description: `${op.name} with ${label}`,
        request: op.request(KEY_OF[who]),
        response: envelope(403, 'FORBIDDEN', false),
        run: async (c) => void (await fails(op.call(c[who]), 403, 'FORBIDDEN')),
      });
    }
    if (op.internal === true)
      out.push({
        state: 'the next request fails with an internal error',
        description: `${op.name} that meets an internal fault`,
        request: op.request(KEY_OF[op.client]),
        response: envelope(500, 'INTERNAL', false),
        run: async (c) => void (await fails(op.call(c[op.client]), 500, 'INTERNAL')),
      });
  }
  return [
    ...out,
    {
      description: 'a drain of a pool outside the pools of its key',
      request: post('/v1/pools/pact-sim/drain', { deadline_ms: 5000 }, PACT_KEYS.poolOps),
      response: envelope(403, 'FORBIDDEN', false, {
        message: M.regex(
          "^API key '[^']+' may not control pool 'pact-sim'$",
          "API key 'pool-ops' may not control pool 'pact-sim'",
        ),
      }),
      run: async (c) => void (await fails(c.poolOps.drainPool('pact-sim', 5000), 403, 'FORBIDDEN')),
    },
    {
      description: 'a lifecycle change to an unknown state',
      request: post('/v1/catalog/models/pact-known/state', { state: 'Bogus' }, O),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        void (await fails(
          c.ops.send({
            method: 'POST',
            path: '/v1/catalog/models/pact-known/state',
            body: { state: 'Bogus' },
            idempotent: false,
          }),
          400,
          'INVALID_PARAMS',
        )),
    },
    {
      description: 'a list of artifacts with a limit below 1',
      request: { method: 'GET', path: '/v1/artifacts', query: { limit: '0' }, headers: bearer(O) },
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) => void (await fails(c.ops.listArtifacts({ limit: 0 }), 400, 'INVALID_PARAMS')),
    },
  ];
}

/** Every interaction of the typed client, in the order the consumer suite runs them. */
export const INTERACTIONS: Interaction[] = [
  ...dataPlane,
  ...toolInteractions(PACT_KEYS),
  ...controlPlaneInteractions(),
  ...refusals(),
];
