/**
 * Every refusal of the OpenAI-compatible surface (SPEC §17 §2.7) on simulated vLLM replicas:
 * the HTTP status of the OrchQueue code, OpenAI's error body `{error: {message, type, code,
 * param}}` valid against contracts/openapi/openai.yaml, the headers a client relies on
 * (`Retry-After`, `X-Backoff-Ms` and `retry-after-ms` on 429/503, `WWW-Authenticate` on 401,
 * `X-Correlation-Id` always), failures after admission in both response forms, and the official
 * `openai` client's view of a 429 (its error class, and a retry after the server's backoff).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import { generateKeyPair, signMinisign } from '../../src/catalog/minisign.js';
import { sha256Hex } from '../../src/http/auth.js';
import { loadOpenApi } from '../../src/http/openapi.js';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { openAiSseChunks, validateOpenAi } from '../support/openai-schema.js';
import { parseExposition } from '../support/prom-parse.js';
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

const QUOTA_KEY = 'openai-quota-tenant-key';
/** Small enough that a 20 kB prompt is refused, large enough for every other request here. */
const BODY_LIMIT = 16_384;

/** One slot, one queue place, slow tokens: a blocker holds the slot for as long as a test needs. */
function onePlace(id: string, policy: 'reject' | 'drop-lru'): RawPool {
  const p = simPool(id, 'vllm', { sim: { tokens_per_s: 100 } });
  return { ...p, launch: { ...p.launch, parallel: 1 }, queue: { capacity: 1, full_policy: policy } };
}

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: {
      keys: [...TEST_KEYS, { id: 'quota', tenant: 'quota', sha256: sha256Hex(QUOTA_KEY), scopes: ['data'] }],
    },
    // One submission, then a refill a test never waits for: the second is refused, always.
    fairness: { tenants: [{ id: 'quota', rps: 0.01, burst: 1 }] },
    limits: { body_limit_bytes: BODY_LIMIT },
    pools: [
      simPool('main', 'vllm'),
      onePlace('full', 'reject'),
      onePlace('lru', 'drop-lru'),
      onePlace('retry', 'reject'),
      onePlace('slow', 'reject'),
      simPool('drain', 'vllm'),
      simPool('fault', 'vllm', { sim: { tokens_per_s: 200 } }),
      // llama-server is the engine that answers "loading" while it (re)loads a model.
      simPool('loading', 'llamacpp'),
    ],
  });
});
afterAll(async () => {
  await h?.close();
});

const pool = (id: string): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === id);
  if (!p) throw new Error(`no pool ${id}`);
  return p;
};

interface OpenAiReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

/** A request to the OpenAI surface, keeping the raw answer (`call` checks only data/control). */
async function openai(
  method: 'GET' | 'POST',
  path: string,
  opts: {
    key?: string | undefined;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    /** Another orchestrator than `h`. */
    url?: string;
  } = {},
): Promise<OpenAiReply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers['authorization'] = `Bearer ${opts.key}`;
  const body = opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${opts.url ?? h.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const completion = (
  body: Record<string, unknown>,
  opts: { key?: string; headers?: Record<string, string> } = {},
) =>
  openai('POST', '/v1/completions', {
    key: opts.key ?? KEYS.alice,
    body,
    ...(opts.headers ? { headers: opts.headers } : {}),
  });

/** The operation's documented statuses in openai.yaml (`/v1/models/{id}` as a template). */
function documentedStatuses(method: string, template: string): string[] {
  const item = loadOpenApi().openai.paths[template] as Record<string, { responses?: object }> | undefined;
  return Object.keys(item?.[method.toLowerCase()]?.responses ?? {});
}

interface Expected {
  readonly status: number;
  readonly code: string;
  /** OpenAI's error class, where the test pins it. */
  readonly type?: string;
  readonly param?: string | null;
  /** The documented operation the refusal answers, to check that its status is documented. */
  readonly op?: readonly [method: string, template: string];
  /** False for a 503 that waiting cannot resolve (a retired model): no backoff is offered. */
  readonly backoff?: false;
}

/** The refusal as OpenAI's body: status, type, code, param, the contract, the headers. */
function expectRefusal(r: OpenAiReply, e: Expected): { message: string; param: string | null } {
  expect(r.status, r.text).toBe(e.status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  validateOpenAi('ErrorResponse', r.json);
  const err = (r.json as { error: { message: string; type: string; code: string; param: string | null } })
    .error;
  expect(err.code).toBe(e.code);
  if (e.type !== undefined) expect(err.type).toBe(e.type);
  if (e.param !== undefined) expect(err.param).toBe(e.param);
  expect(err.message).not.toBe('');
  expect(r.headers.get('x-correlation-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
  const [method, template] = e.op ?? ['POST', '/v1/completions'];
  expect(documentedStatuses(method, template)).toContain(String(e.status));
  if (e.status === 429 || e.status === 503) {
    if (e.backoff !== false) expectBackoff(r);
  } else {
    expect(r.headers.get('retry-after')).toBeNull();
    expect(r.headers.get('retry-after-ms')).toBeNull();
  }
  return err;
}

/** `Retry-After` in whole seconds, and the same backoff in ms under both names OpenAI clients read. */
function expectBackoff(r: OpenAiReply): number {
  const seconds = Number(r.headers.get('retry-after'));
  const ms = Number(r.headers.get('x-backoff-ms'));
  expect(Number.isInteger(seconds) && seconds >= 1, `Retry-After ${r.headers.get('retry-after')}`).toBe(true);
  expect(Number.isInteger(ms) && ms >= 1, `X-Backoff-Ms ${r.headers.get('x-backoff-ms')}`).toBe(true);
  expect(r.headers.get('retry-after-ms')).toBe(String(ms));
  expect(seconds).toBe(Math.max(1, Math.ceil(ms / 1000)));
  return ms;
}

/** Tasks the pool accepted so far, as `/metrics` counts them. */
async function enqueuedTotal(poolId: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const samples = parseExposition(text).get('tasks_enqueued_total')?.samples ?? [];
  return samples.filter((s) => s.labels['pool_id'] === poolId).reduce((a, s) => a + s.value, 0);
}

/** An OrchQueue task on `poolId` that holds its only slot; resolves once it runs. */
async function blocker(poolId: string): Promise<string> {
  const body = task(poolId, { engine: 'vllm', max_tokens: 2_000, prompt: 'a', priority: 'batch' });
  expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body })).status).toBe(202);
  await until(() => pool(poolId).queue.size === 0 && pool(poolId).running.size === 1);
  return body.task_id;
}

/** An OrchQueue task left waiting in `poolId`'s queue. */
async function queued(poolId: string, priority: 'interactive' | 'batch' = 'interactive'): Promise<string> {
  const body = task(poolId, { engine: 'vllm', max_tokens: 4, priority });
  expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body })).status).toBe(202);
  expect(pool(poolId).queue.size).toBe(1);
  return body.task_id;
}

async function cancel(...ids: string[]): Promise<void> {
  for (const id of ids)
    expect((await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key: KEYS.alice })).status).toBeLessThan(
      300,
    );
}

async function inject(poolId: string, faults: Record<string, unknown>): Promise<void> {
  const replica = pool(poolId).supervisor.replicas()[0];
  if (!replica) throw new Error('no replica');
  const res = await fetch(`${replica.adapter.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  expect(res.status).toBe(200);
}

const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as {
    ready: boolean;
    draining: boolean;
    lifecycle?: { operation: string; state: string };
  };

/** Header values the edge refuses, by the header's documented name. */
const BAD_HEADERS: readonly [name: string, value: string][] = [
  ['X-LLorch-Priority', 'urgent'],
  ['X-LLorch-Deadline-Ms', 'soon'],
  ['X-LLorch-Deadline-Ms', '0'],
  ['X-LLorch-Deadline-Ms', '-5'],
  ['X-LLorch-Session', 's'.repeat(257)],
];

let drained: Promise<void> | undefined;
/** Drains pool `drain` once (a drained pool stays drained), for every test that needs it so. */
function drainPool(): Promise<void> {
  drained ??= (async () => {
    const r = await call(h.url, 'POST', '/v1/pools/drain/drain', {
      key: KEYS.ops,
      body: { deadline_ms: 1_000 },
    });
    expect(r.status).toBe(202);
    await until(async () => (await health('drain')).lifecycle?.state === 'succeeded');
  })();
  return drained;
}

const INVALID = { status: 400, code: 'INVALID_PARAMS', type: 'invalid_request_error' } as const;

describe('400 INVALID_PARAMS: refused at the edge, nothing enqueued', () => {
  const ok = { model: 'main', prompt: 'Once upon a time', max_tokens: 4 };
  const cases: readonly [name: string, body: Record<string, unknown>, param: string][] = [
    ['an unknown model', { ...ok, model: 'no-such-model' }, 'model'],
    ['no model', { prompt: 'x' }, 'model'],
    ['temperature 3 (above 2)', { ...ok, temperature: 3 }, 'temperature'],
    ['temperature of the wrong type', { ...ok, temperature: 'hot' }, 'temperature'],
    ['max_tokens 0', { ...ok, max_tokens: 0 }, 'max_tokens'],
    ['max_tokens not an integer', { ...ok, max_tokens: 2.5 }, 'max_tokens'],
    ['max_tokens above ctx', { ...ok, max_tokens: 1_000_000 }, 'max_tokens'],
    ['stop with 9 entries', { ...ok, stop: ['1', '2', '3', '4', '5', '6', '7', '8', '9'] }, 'stop'],
    ['stream of the wrong type', { ...ok, stream: 'yes' }, 'stream'],
    ['n: 2', { ...ok, n: 2 }, 'n'],
    ['logprobs: true', { ...ok, logprobs: true }, 'logprobs'],
    ['suffix', { ...ok, suffix: ' the end' }, 'suffix'],
    ['best_of: 3', { ...ok, best_of: 3 }, 'best_of'],
    ['echo: true', { ...ok, echo: true }, 'echo'],
    ['an unknown field', { ...ok, frobnicate: true }, 'frobnicate'],
    ['a chat-only field on completions', { ...ok, messages: [{ role: 'user', content: 'hi' }] }, 'messages'],
    ['a batch of prompts', { ...ok, prompt: ['a', 'b'] }, 'prompt'],
    ['token-array prompts', { ...ok, prompt: [1, 2, 3] }, 'prompt'],
    ['stream_options without stream', { ...ok, stream_options: { include_usage: true } }, 'stream_options'],
  ];
  let before: number;
  beforeAll(async () => {
    before = await enqueuedTotal('main');
  });

  for (const [name, body, param] of cases) {
    it(`${name} → param ${param}`, async () => {
      expectRefusal(await completion(body), { ...INVALID, param });
    });
  }

  it('chat: an unknown role and an empty message list name the field', async () => {
    const bad = await openai('POST', '/v1/chat/completions', {
      key: KEYS.alice,
      body: { model: 'main', messages: [{ role: 'wizard', content: 'hi' }] },
    });
    expectRefusal(bad, { ...INVALID, param: 'messages[0].role', op: ['POST', '/v1/chat/completions'] });
    const empty = await openai('POST', '/v1/chat/completions', {
      key: KEYS.alice,
      body: { model: 'main', messages: [] },
    });
    expectRefusal(empty, { ...INVALID, param: 'messages', op: ['POST', '/v1/chat/completions'] });
    const choice = await openai('POST', '/v1/chat/completions', {
      key: KEYS.alice,
      body: { model: 'main', messages: [{ role: 'user', content: 'hi' }], tool_choice: 'required' },
    });
    expectRefusal(choice, { ...INVALID, param: 'tool_choice', op: ['POST', '/v1/chat/completions'] });
  });

  it('embeddings: dimensions and stream are refused by name', async () => {
    const op = ['POST', '/v1/embeddings'] as const;
    for (const [extra, param] of [
      [{ dimensions: 8 }, 'dimensions'],
      [{ stream: true }, 'stream'],
      [{ encoding_format: 'int8' }, 'encoding_format'],
    ] as const) {
      const r = await openai('POST', '/v1/embeddings', {
        key: KEYS.alice,
        body: { model: 'main', input: 'hi', ...extra },
      });
      expectRefusal(r, { ...INVALID, param, op });
    }
  });

  it('prompt + max_tokens over ctx, found by the engine tokenizer at admission → param max_tokens', async () => {
    const r = await completion({ ...ok, max_tokens: pool('main').config.ctx });
    const err = expectRefusal(r, { ...INVALID, param: 'max_tokens' });
    expect(err.message).toMatch(/exceeds ctx \(2048\)/);
  });

  it('a malformed JSON body, and a body that is not an object', async () => {
    const broken = await openai('POST', '/v1/completions', {
      key: KEYS.alice,
      rawBody: '{"model": "main", ',
    });
    expectRefusal(broken, { ...INVALID, param: null });
    const list = await openai('POST', '/v1/completions', { key: KEYS.alice, rawBody: '[1, 2]' });
    expectRefusal(list, { ...INVALID });
  });

  it('bad X-LLorch-Priority, X-LLorch-Deadline-Ms and X-LLorch-Session headers are refused by name', async () => {
    for (const [name, value] of BAD_HEADERS) {
      const r = await completion(ok, { headers: { [name]: value } });
      const err = expectRefusal(r, { ...INVALID, param: name });
      expect(err.message.startsWith(`${name}:`), err.message).toBe(true);
    }
  });

  it('none of the refused requests was enqueued', async () => {
    expect(await enqueuedTotal('main')).toBe(before);
    expect(pool('main').queue.size).toBe(0);
    expect(pool('main').running.size).toBe(0);
    // The same request, valid, is accepted and counted: the counter is the one admission moves.
    const r = await completion(ok);
    expect(r.status, r.text).toBe(200);
    expect(await enqueuedTotal('main')).toBe(before + 1);
  });
});

describe('401, 403, 404, 413', () => {
  const ok = { model: 'main', prompt: 'hi', max_tokens: 2 };

  it('401 UNAUTHORIZED without a key and with a wrong key, with WWW-Authenticate', async () => {
    const none = await openai('POST', '/v1/completions', { body: ok });
    expectRefusal(none, { status: 401, code: 'UNAUTHORIZED', type: 'authentication_error', param: null });
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await openai('POST', '/v1/chat/completions', {
      key: 'not-a-key',
      body: { model: 'main', messages: [{ role: 'user', content: 'hi' }] },
    });
    expectRefusal(wrong, {
      status: 401,
      code: 'UNAUTHORIZED',
      type: 'authentication_error',
      param: null,
      op: ['POST', '/v1/chat/completions'],
    });
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const models = await openai('GET', '/v1/models');
    expectRefusal(models, {
      status: 401,
      code: 'UNAUTHORIZED',
      type: 'authentication_error',
      op: ['GET', '/v1/models'],
    });
  });

  it('403 FORBIDDEN for a key with only the control scope', async () => {
    const r = await completion(ok, { key: KEYS.ops });
    const err = expectRefusal(r, { status: 403, code: 'FORBIDDEN', type: 'permission_error', param: null });
    expect(err.message).toMatch(/no 'data' scope/);
    expect(r.headers.get('www-authenticate')).toBeNull();
    const models = await openai('GET', '/v1/models', { key: KEYS.ops });
    expectRefusal(models, {
      status: 403,
      code: 'FORBIDDEN',
      type: 'permission_error',
      op: ['GET', '/v1/models'],
    });
  });

  it('404 NOT_FOUND for GET /v1/models/{unknown}', async () => {
    const r = await openai('GET', '/v1/models/no-such-model', { key: KEYS.alice });
    const err = expectRefusal(r, {
      status: 404,
      code: 'NOT_FOUND',
      type: 'not_found_error',
      op: ['GET', '/v1/models/{id}'],
    });
    expect(err.message).toContain('no-such-model');
  });

  it('413 PAYLOAD_TOO_LARGE above limits.body_limit_bytes, nothing enqueued', async () => {
    const before = await enqueuedTotal('main');
    const r = await completion({ ...ok, prompt: 'x'.repeat(BODY_LIMIT + 1) });
    expectRefusal(r, { status: 413, code: 'PAYLOAD_TOO_LARGE', type: 'invalid_request_error', param: null });
    expect(await enqueuedTotal('main')).toBe(before);
  });

  it('X-Correlation-Id: a client-chosen id comes back on a refusal', async () => {
    const id = randomUUID();
    const r = await completion({ ...ok, n: 3 }, { headers: { 'x-correlation-id': id } });
    expectRefusal(r, { ...INVALID, param: 'n' });
    expect(r.headers.get('x-correlation-id')).toBe(id);
  });
});

describe('429: full queues and quotas', () => {
  const ok = { prompt: 'hi', max_tokens: 2 };

  it('ADMISSION_REJECT from a full queue (policy reject), with the backoff under all three names', async () => {
    const running = await blocker('full');
    const waiting = await queued('full');
    const r = await completion({ ...ok, model: 'full' });
    const err = expectRefusal(r, {
      status: 429,
      code: 'ADMISSION_REJECT',
      type: 'rate_limit_error',
      param: null,
    });
    expect(err.message).toMatch(/queue of pool 'full' is full .*policy reject/);
    expect(pool('full').queue.size).toBe(1);
    await cancel(running, waiting);
  });

  it('ADMISSION_REJECT from the tenant rps quota', async () => {
    const first = await completion({ ...ok, model: 'main' }, { key: QUOTA_KEY });
    expect(first.status, first.text).toBe(200);
    const r = await completion({ ...ok, model: 'main' }, { key: QUOTA_KEY });
    const err = expectRefusal(r, {
      status: 429,
      code: 'ADMISSION_REJECT',
      type: 'rate_limit_error',
      param: null,
    });
    expect(err.message).toMatch(/rate quota/);
    // The refill of one token at 0.01/s: the backoff is the bucket's, not a constant.
    expect(Number(r.headers.get('x-backoff-ms'))).toBeGreaterThan(1_000);
  });

  it('QUEUE_FULL_DROP_LRU when drop-lru has no lower-priority work to drop for the arrival', async () => {
    const running = await blocker('lru');
    const waiting = await queued('lru', 'interactive');
    const r = await completion({ ...ok, model: 'lru' }, { headers: { 'x-llorch-priority': 'batch' } });
    expectRefusal(r, { status: 429, code: 'QUEUE_FULL_DROP_LRU', type: 'rate_limit_error', param: null });
    // The queued task was kept: the refusal dropped nothing.
    expect(pool('lru').queue.size).toBe(1);
    await cancel(running, waiting);
  });
});

describe('422 DEADLINE_UNMET', () => {
  it('a tiny X-LLorch-Deadline-Ms behind a long decode is refused up front, naming the header', async () => {
    // Teach the pool its service time first.
    const warm = await completion({ model: 'slow', prompt: 'warm', max_tokens: 4 });
    expect(warm.status, warm.text).toBe(200);
    const running = await blocker('slow');
    const before = await enqueuedTotal('slow');
    const r = await completion(
      { model: 'slow', prompt: 'hi', max_tokens: 1 },
      { headers: { 'x-llorch-deadline-ms': '50' } },
    );
    const err = expectRefusal(r, {
      status: 422,
      code: 'DEADLINE_UNMET',
      type: 'invalid_request_error',
      param: 'X-LLorch-Deadline-Ms',
    });
    expect(err.message).toMatch(/misses the deadline of 50 ms/);
    expect(await enqueuedTotal('slow')).toBe(before);
    await cancel(running);
  });
});

describe('503: pools that take no work', () => {
  it('POOL_UNAVAILABLE for a drained pool', async () => {
    await drainPool();
    const refused = await completion({ model: 'drain', prompt: 'hi', max_tokens: 2 });
    const err = expectRefusal(refused, {
      status: 503,
      code: 'POOL_UNAVAILABLE',
      type: 'server_error',
      param: null,
    });
    expect(err.message).toMatch(/drained/);
  });

  it('POOL_UNREADY while the engine (re)loads its model', async () => {
    await inject('loading', { loading_ms: 600_000 });
    await until(async () => !(await health('loading')).ready);
    const r = await completion({ model: 'loading', prompt: 'hi', max_tokens: 2 });
    expectRefusal(r, { status: 503, code: 'POOL_UNREADY', param: null });
    await inject('loading', {});
  });
});

describe('a failure after admission', () => {
  it('streaming: the chunks so far, then data: {"error": …} with the task code, then [DONE]', async () => {
    await inject('fault', { oom_after_tokens: 3 });
    const r = await openai('POST', '/v1/chat/completions', {
      key: KEYS.alice,
      body: { model: 'fault', messages: [{ role: 'user', content: 'hi' }], max_tokens: 200, stream: true },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(r.headers.get('x-correlation-id')).not.toBeNull();
    // One `data:` line per event, ended by exactly one [DONE], as vLLM ends a failed stream.
    const data = openAiSseChunks(r.text);
    const last = data.at(-1);
    validateOpenAi('ErrorResponse', last);
    expect(last).toMatchObject({ error: { code: 'WORKER_RESET', type: 'server_error', param: null } });
    // vLLM reports an engine-core death, whatever killed it (the dialect's own wording).
    expect((last as { error: { message: string } }).error.message).toMatch(/EngineCore/);
    const chunks = data.slice(0, -1);
    expect(chunks.length).toBeGreaterThanOrEqual(1);
    for (const c of chunks) validateOpenAi('ChatCompletionChunk', c);
    const choices = chunks.map(
      (c) => (c as { choices: { delta: { content?: string }; finish_reason: string | null }[] }).choices[0],
    );
    // The failure is not dressed up as a finish: no choice chunk carries a finish_reason.
    expect(choices.map((c) => c?.finish_reason ?? null)).toEqual(choices.map(() => null));
    expect(choices.map((c) => c?.delta.content ?? '').join('')).not.toBe('');
    await inject('fault', {});
  });

  it('non-streaming: the task code with its HTTP status (502 WORKER_RESET)', async () => {
    await inject('fault', { oom_after_tokens: 3 });
    const r = await completion({ model: 'fault', prompt: 'hi', max_tokens: 200 });
    expect(r.status, r.text).toBe(502);
    validateOpenAi('ErrorResponse', r.json);
    expect(r.json).toMatchObject({ error: { code: 'WORKER_RESET', type: 'server_error', param: null } });
    expect(r.headers.get('x-correlation-id')).not.toBeNull();
    await inject('fault', {});
  });
});

describe('the official openai client on a 429', () => {
  it('sees RateLimitError with code ADMISSION_REJECT', async () => {
    const running = await blocker('retry');
    const waiting = await queued('retry');
    const client = new OpenAI({ apiKey: KEYS.alice, baseURL: `${h.url}/v1`, maxRetries: 0 });
    const err = await client.completions.create({ model: 'retry', prompt: 'hi', max_tokens: 2 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err).toMatchObject({
      status: 429,
      code: 'ADMISSION_REJECT',
      type: 'rate_limit_error',
      param: null,
    });
    await cancel(running, waiting);
  });

  it("with maxRetries: 2 it waits the server's retry-after-ms and succeeds once room frees", async () => {
    const running = await blocker('retry');
    const waiting = await queued('retry');
    const seen: { status: number; sentAt: number; answeredAt: number; retryAfterMs?: number }[] = [];
    // The room frees exactly when the client has its 429 in hand: no race with its backoff.
    const recording: typeof fetch = async (input, init) => {
      const sentAt = performance.now();
      const res = await fetch(input, init);
      const entry: (typeof seen)[number] = { status: res.status, sentAt, answeredAt: 0 };
      seen.push(entry);
      if (res.status === 429) {
        entry.retryAfterMs = Number(res.headers.get('retry-after-ms'));
        if (seen.length === 1) await cancel(running, waiting);
      }
      entry.answeredAt = performance.now();
      return res;
    };
    const client = new OpenAI({
      apiKey: KEYS.alice,
      baseURL: `${h.url}/v1`,
      maxRetries: 2,
      fetch: recording,
    });
    const out = await client.completions.create({ model: 'retry', prompt: 'hi', max_tokens: 2 });
    expect(out.object).toBe('text_completion');
    expect(out.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
    expect(seen.map((s) => s.status)).toEqual([429, 200]);
    const [refused, retried] = seen;
    expect(refused?.retryAfterMs).toBeGreaterThan(0);
    // The client slept the server's hint (timers may fire up to 1 ms early on performance.now).
    expect((retried?.sentAt ?? 0) - (refused?.answeredAt ?? 0)).toBeGreaterThanOrEqual(
      (refused?.retryAfterMs ?? 0) - 1,
    );
  });
});

describe('catalog refusals: MODEL_DEPRECATED, UNTRUSTED_ARTIFACT', () => {
  let c: Harness;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-openai-trust-'));
    const key = generateKeyPair('openai-refusals');
    await writeFile(join(dir, 'trusted.pub'), key.publicKeyText);
    const legacy = join(dir, 'legacy.bin');
    await writeFile(legacy, 'legacy weights');
    await writeFile(`${legacy}.minisig`, signMinisign(Buffer.from('legacy weights'), key, 'file:legacy.bin'));
    const unsigned = join(dir, 'unsigned.bin');
    await writeFile(unsigned, 'nobody signed these bytes');
    c = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: {
        trust_policy: 'strict',
        trust_roots: [join(dir, 'trusted.pub')],
        allowed_sources: ['path', 'file'],
      },
      pools: [
        simPool('legacy', 'vllm'),
        simPool('plain', 'vllm', { model: { id: 'plain', path: unsigned } }),
      ],
    });
    const added = await call(c.url, 'POST', '/v1/catalog/models', {
      key: KEYS.ops,
      body: { id: 'legacy', source: legacy },
    });
    expect(added.status, added.text).toBeLessThan(300);
    for (const state of ['Active', 'Deprecated']) {
      const r = await call(c.url, 'POST', '/v1/catalog/models/legacy/state', {
        key: KEYS.ops,
        body: { state },
      });
      expect(r.status, r.text).toBe(200);
    }
  });
  afterAll(async () => {
    await c?.close();
  });

  const ask = (model: string) =>
    openai('POST', '/v1/completions', {
      url: c.url,
      key: KEYS.alice,
      body: { model, prompt: 'hi', max_tokens: 2 },
    });

  it('409 MODEL_DEPRECATED for a new session on a Deprecated model', async () => {
    const err = expectRefusal(await ask('legacy'), {
      status: 409,
      code: 'MODEL_DEPRECATED',
      type: 'invalid_request_error',
    });
    expect(err.message).toMatch(/deprecated/);
  });

  it('403 UNTRUSTED_ARTIFACT for a model that failed verification under strict', async () => {
    const err = expectRefusal(await ask('plain'), {
      status: 403,
      code: 'UNTRUSTED_ARTIFACT',
      type: 'permission_error',
    });
    expect(err.message).toMatch(/strict trust policy/);
  });
});

/**
 * Where the route and its contract (openai.yaml, SPEC §2.6, §17 §2.7) disagree today. Each test
 * fails until the source is fixed; the message says what was sent.
 */
describe('contract', () => {
  it('openai.yaml documents the statuses of failures after admission (502 WORKER_RESET, 504 DECODE_TIMEOUT)', () => {
    for (const template of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings'])
      expect(documentedStatuses('POST', template), template).toEqual(expect.arrayContaining(['502', '504']));
  });
});
