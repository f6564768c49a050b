/**
 * Consumer contracts of the official `openai` Node client against the OpenAI-compatible surface
 * (SPEC §16, §17 §2.7): every (operation, status) pair contracts/openapi/openai.yaml documents.
 * Each entry is one Pact interaction plus what the client makes of the answer (its error class,
 * `status`, `code`, `type`, `param`, the headers it reads); the provider suite replays the same
 * file against a real orchestrator whose provider states bring each condition about.
 */
import { MatchersV3 as M, type V3Request, type V3Response } from '@pact-foundation/pact';
import OpenAI from 'openai';
import { expect } from 'vitest';
import type { PactInteraction } from './pact-runner.js';

/** Raw API keys of the tenants the provider configures (their hashes, with these scopes). */
export const OPENAI_PACT_KEYS = {
  alice: 'oai-alice-data-key',
  ops: 'oai-ops-control-key',
  limited: 'oai-limited-tenant-key',
  wrong: 'oai-key-nobody-configured',
} as const;
/** Where provider states write the model files they catalogue. */
export const OPENAI_PACT_DIR = '/tmp/llorch-openai-pact';

/** One `openai` client per key, each against the same base URL. */
export interface OpenAiClients {
  readonly alice: OpenAI;
  readonly ops: OpenAI;
  readonly limited: OpenAI;
  readonly wrong: OpenAI;
}

/** One Pact interaction of the openai client, plus what the client must make of the answer. */
export type OpenAiInteraction = PactInteraction<OpenAiClients>;

const CID = {
  'X-Correlation-Id': M.regex('^[A-Za-z0-9._:-]{1,128}$', '5d1e3c9a-7f0b-4d2e-8a61-0c9b2f4e7a13'),
};
const JSON_CT = { 'Content-Type': 'application/json; charset=utf-8' };
const SSE_CT = { 'Content-Type': 'text/event-stream; charset=utf-8' };
const INT = (example: number) => M.integer(example);

type Body = Record<string, unknown>;
type Call = (client: OpenAI, body: Body, headers: Record<string, string>) => Promise<unknown>;

/** The three generation/embedding operations, as the client calls them. */
interface Operation {
  readonly name: string;
  readonly path: string;
  readonly body: (model: string, extra?: Body) => Body;
  readonly call: Call;
}

const CHAT: Operation = {
  name: 'a chat completion',
  path: '/v1/chat/completions',
  body: (model, extra = {}) => ({
    model,
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 4,
    seed: 7,
    ...extra,
  }),
  call: (client, body, headers) =>
    client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming, {
      headers,
    }),
};
const COMPLETION: Operation = {
  name: 'a text completion',
  path: '/v1/completions',
  body: (model, extra = {}) => ({ model, prompt: 'Once upon a time', max_tokens: 4, seed: 7, ...extra }),
  call: (client, body, headers) =>
    client.completions.create(body as unknown as OpenAI.CompletionCreateParamsNonStreaming, { headers }),
};
const EMBEDDING: Operation = {
  name: 'an embedding',
  path: '/v1/embeddings',
  body: (model, extra = {}) => ({ model, input: ['hello', 'world'], encoding_format: 'float', ...extra }),
  call: (client, body, headers) =>
    client.embeddings.create(body as unknown as OpenAI.EmbeddingCreateParams, { headers }),
};

const post = (path: string, body: Body, key: string, headers: Record<string, string> = {}): V3Request => ({
  method: 'POST',
  path,
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}`, ...headers },
  body,
});
const get = (path: string, key: string): V3Request => ({
  method: 'GET',
  path,
  headers: { Authorization: `Bearer ${key}` },
});

/** OpenAI's error body with the OrchQueue code (openai.yaml `ErrorResponse`). */
function errorResponse(
  status: number,
  code: string,
  type: string,
  param: string | null,
  headers: Record<string, unknown> = {},
): V3Response {
  return {
    status,
    headers: { ...JSON_CT, ...CID, ...headers },
    body: { error: { message: M.string(`${code.toLowerCase()} explained`), type, code, param } },
  };
}

type ApiError = InstanceType<typeof OpenAI.APIError>;
type ErrorClass = abstract new (...args: never[]) => ApiError;

/** What the client threw: the class OpenAI's clients branch on, with the server's fields. */
async function refused(
  p: Promise<unknown>,
  cls: ErrorClass,
  e: { status: number; code: string; type: string; param: string | null },
): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(err).toBeInstanceOf(cls);
  const api = err as ApiError;
  // A 413 has no subclass of its own: the client raises the base class.
  if (cls === OpenAI.APIError) expect(api.constructor).toBe(OpenAI.APIError);
  expect({ status: api.status, code: api.code, type: api.type, param: api.param }).toEqual(e);
  expect(api.headers?.get('x-correlation-id')).toBeTruthy();
  return api;
}

/** The backoff a retrying client honours: `retry-after-ms` (openai-node/python) and `Retry-After`. */
function expectBackoff(err: ApiError): void {
  const ms = Number(err.headers?.get('retry-after-ms'));
  const s = Number(err.headers?.get('retry-after'));
  expect(Number.isInteger(ms) && ms >= 1).toBe(true);
  expect(s).toBe(Math.max(1, Math.ceil(ms / 1000)));
  expect(err.headers?.get('x-backoff-ms')).toBe(String(ms));
}

const BACKOFF = {
  'Retry-After': M.regex('^[1-9][0-9]*$', '2'),
  'X-Backoff-Ms': M.regex('^[1-9][0-9]*$', '1500'),
  'retry-after-ms': M.regex('^[1-9][0-9]*$', '1500'),
};

/** Pools the provider configures (openai-pact.test.ts); each refusal has a pool of its own. */
export const POOLS = {
  /** llama.cpp (simulated) with `--embeddings --pooling mean`: chat, completions, embeddings. */
  main: 'oai-main',
  /** As main, 5 tokens/s: a measured decode rate that a 1 ms deadline cannot meet. */
  slow: 'oai-slow',
  /** As main, drained by its provider state. */
  down: 'oai-down',
  /** As main, catalogued and Deprecated by its provider state. */
  old: 'oai-old',
  /** vLLM (simulated), 20 tokens/s, a 300 ms wall timeout. */
  timeout: 'oai-timeout',
  /** vLLM (simulated) whose engine runs out of memory once its state arms the fault. */
  fault: 'oai-fault',
  /** vLLM pooling model (simulated) whose engine runs out of memory once armed. */
  embedFault: 'oai-embed-fault',
  /** vLLM pooling model (simulated), a 300 ms wall timeout, whose engine hangs once armed. */
  embedHang: 'oai-embed-hang',
} as const;

const A = OPENAI_PACT_KEYS.alice;

/** The refusals every POST operation documents, with what brings each about. */
function refusals(op: Operation): OpenAiInteraction[] {
  const main = op.body(POOLS.main);
  const each: {
    status: number;
    code: string;
    type: string;
    param: string | null;
    cls: ErrorClass;
    what: string;
    state?: string;
    params?: Record<string, unknown>;
    body?: Body;
    key?: keyof typeof OPENAI_PACT_KEYS;
    requestHeaders?: Record<string, string>;
    responseHeaders?: Record<string, unknown>;
    check?: (err: ApiError) => void;
  }[] = [
    {
      status: 400,
      code: 'INVALID_PARAMS',
      type: 'invalid_request_error',
      ...(op === EMBEDDING
        ? { param: 'dimensions', body: op.body(POOLS.main, { dimensions: 8 }) }
        : { param: 'n', body: op.body(POOLS.main, { n: 2 }) }),
      cls: OpenAI.BadRequestError,
      what: 'a parameter llama-orch cannot honour',
    },
    {
      status: 401,
      code: 'UNAUTHORIZED',
      type: 'authentication_error',
      param: null,
      cls: OpenAI.AuthenticationError,
      what: 'an unknown API key',
      key: 'wrong',
      responseHeaders: { 'WWW-Authenticate': M.regex('^Bearer( .*)?$', 'Bearer error="invalid_token"') },
      check: (err) => expect(err.headers?.get('www-authenticate')).toMatch(/^Bearer/),
    },
    {
      status: 403,
      code: 'FORBIDDEN',
      type: 'permission_error',
      param: null,
      cls: OpenAI.PermissionDeniedError,
      what: 'a key without the data scope',
      key: 'ops',
    },
    {
      status: 409,
      code: 'MODEL_DEPRECATED',
      type: 'invalid_request_error',
      param: 'model',
      cls: OpenAI.ConflictError,
      what: 'a Deprecated model',
      state: 'model is Deprecated',
      params: { model_id: POOLS.old, path: `${OPENAI_PACT_DIR}/${POOLS.old}.gguf` },
      body: op.body(POOLS.old),
    },
    {
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
      type: 'invalid_request_error',
      param: null,
      cls: OpenAI.APIError,
      what: 'a body over the size limit',
      body:
        op === EMBEDDING
          ? op.body(POOLS.main, { input: ['x'.repeat(20_000)] })
          : op === CHAT
            ? op.body(POOLS.main, { messages: [{ role: 'user', content: 'x'.repeat(20_000) }] })
            : op.body(POOLS.main, { prompt: 'x'.repeat(20_000) }),
    },
    {
      status: 422,
      code: 'DEADLINE_UNMET',
      type: 'invalid_request_error',
      param: 'X-LLorch-Deadline-Ms',
      cls: OpenAI.UnprocessableEntityError,
      what: 'a deadline the measured decode rate cannot meet',
      state: 'the pool has measured its decode rate',
      params: { model_ref: POOLS.slow, engine: 'llamacpp', max_tokens: 3 },
      body: op === EMBEDDING ? op.body(POOLS.slow) : op.body(POOLS.slow, { max_tokens: 1000 }),
      requestHeaders: { 'X-LLorch-Deadline-Ms': '1' },
    },
    {
      status: 429,
      code: 'ADMISSION_REJECT',
      type: 'rate_limit_error',
      param: null,
      cls: OpenAI.RateLimitError,
      what: 'a tenant over its rate limit',
      state: 'tenant has used up its rate limit',
      params: { tenant: 'limited', model_ref: POOLS.main, engine: 'llamacpp' },
      key: 'limited',
      responseHeaders: BACKOFF,
      check: expectBackoff,
    },
    {
      status: 500,
      code: 'INTERNAL',
      type: 'server_error',
      param: null,
      cls: OpenAI.InternalServerError,
      what: 'an internal fault',
      state: 'the next request fails with an internal error',
    },
    {
      status: 502,
      code: 'WORKER_RESET',
      type: 'server_error',
      param: null,
      cls: OpenAI.InternalServerError,
      what: 'an engine that fails after admission',
      state: 'the engine of a pool has faults',
      params: {
        pool_id: op === EMBEDDING ? POOLS.embedFault : POOLS.fault,
        faults: { oom_after_tokens: op === EMBEDDING ? 0 : 1 },
      },
      body: op.body(
        op === EMBEDDING ? POOLS.embedFault : POOLS.fault,
        op === EMBEDDING ? {} : { max_tokens: 50 },
      ),
    },
    {
      status: 503,
      code: 'POOL_UNAVAILABLE',
      type: 'server_error',
      param: null,
      cls: OpenAI.InternalServerError,
      what: 'a drained pool',
      state: 'pool is unavailable',
      params: { pool_id: POOLS.down },
      body: op.body(POOLS.down),
      responseHeaders: BACKOFF,
      check: expectBackoff,
    },
    {
      status: 504,
      code: 'DECODE_TIMEOUT',
      type: 'server_error',
      param: null,
      cls: OpenAI.InternalServerError,
      what: 'an engine that outlasts the wall timeout',
      ...(op === EMBEDDING
        ? {
            state: 'the engine of a pool has faults',
            params: { pool_id: POOLS.embedHang, faults: { hang: true } },
            body: op.body(POOLS.embedHang),
          }
        : { state: 'pools are ready', body: op.body(POOLS.timeout, { max_tokens: 400 }) }),
    },
  ];
  return each.map((r) => {
    const body = r.body ?? main;
    const key = OPENAI_PACT_KEYS[r.key ?? 'alice'];
    const headers = r.requestHeaders ?? {};
    return {
      ...(r.state === undefined ? {} : { state: r.state }),
      ...(r.params === undefined ? {} : { params: r.params }),
      description: `${op.name} refused ${r.status} ${r.code}: ${r.what}`,
      request: post(op.path, body, key, headers),
      response: errorResponse(r.status, r.code, r.type, r.param, r.responseHeaders),
      run: async (c) => {
        const err = await refused(op.call(c[r.key ?? 'alice'], body, headers), r.cls, {
          status: r.status,
          code: r.code,
          type: r.type,
          param: r.param,
        });
        r.check?.(err);
      },
    };
  });
}

const usage = { prompt_tokens: INT(5), completion_tokens: INT(4), total_tokens: INT(9) };
const FINISH = M.regex('^(stop|length)$', 'length');
const FINGERPRINT = M.string('sim-llamacpp-1');

/** One SSE `data:` event of a chunk of `object`, then the `[DONE]` that ends every stream. */
const chunkEvent = (object: string, inner: string): string =>
  `data: \\{"id":"(?:chatcmpl|cmpl)-[0-9a-f-]+","object":"${object.replaceAll('.', '\\.')}","created":[0-9]+,"model":"${POOLS.main}"[^\\n]*${inner}[^\\n]*\\}\\n\\n`;
const DONE = 'data: \\[DONE\\]\\n\\n';
const FINISHED = '"finish_reason":"(?:stop|length)"';
const USAGE =
  '"choices":\\[\\],"usage":\\{"prompt_tokens":[0-9]+,"completion_tokens":[0-9]+,"total_tokens":[0-9]+';

/** Chat: the role first, text deltas, the finish reason, the usage chunk, then `[DONE]`. */
export const CHAT_STREAM = `^${chunkEvent('chat.completion.chunk', '"delta":\\{"role":"assistant"')}(?:${chunkEvent('chat.completion.chunk', '"delta":\\{"content":')})*${chunkEvent('chat.completion.chunk', FINISHED)}${chunkEvent('chat.completion.chunk', USAGE)}${DONE}$`;
/** Completions: text chunks, the finish reason, the usage chunk, then `[DONE]`. */
export const COMPLETION_STREAM = `^(?:${chunkEvent('text_completion', '"text":"')})*${chunkEvent('text_completion', FINISHED)}${chunkEvent('text_completion', USAGE)}${DONE}$`;

const sse = (events: readonly unknown[]): string =>
  `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
const head = (object: string, id: string) => ({
  id,
  object,
  created: 1764600000,
  model: POOLS.main,
  system_fingerprint: 'sim-llamacpp-1',
});
const CHAT_ID = 'chatcmpl-3f1b7c5e-8a2d-4e6f-9b1a-2c3d4e5f6a7b';
const CMPL_ID = 'cmpl-3f1b7c5e-8a2d-4e6f-9b1a-2c3d4e5f6a7b';
const USAGE_EXAMPLE = { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 };

/** A float32 vector as the base64 of its little-endian bytes (what the client decodes). */
const base64Of = (v: readonly number[]): string => Buffer.from(new Float32Array(v).buffer).toString('base64');
const BASE64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

const chatStreamBody = {
  model: POOLS.main,
  messages: [{ role: 'user', content: 'Say hello.' }],
  max_tokens: 4,
  seed: 7,
  stream: true,
  stream_options: { include_usage: true },
};
const completionStreamBody = {
  model: POOLS.main,
  prompt: 'Once upon a time',
  max_tokens: 4,
  seed: 7,
  stream: true,
  stream_options: { include_usage: true },
};

const answers: OpenAiInteraction[] = [
  {
    state: 'pools are ready',
    description: 'a chat completion answered 200',
    request: post(CHAT.path, CHAT.body(POOLS.main), A),
    response: {
      status: 200,
      headers: { ...JSON_CT, ...CID },
      body: {
        id: M.regex('^chatcmpl-[0-9a-f-]+$', CHAT_ID),
        object: 'chat.completion',
        created: INT(1764600000),
        model: POOLS.main,
        system_fingerprint: FINGERPRINT,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: M.string('Hello') },
            finish_reason: FINISH,
            logprobs: null,
          },
        ],
        usage,
      },
    },
    run: async (c) => {
      const r = await c.alice.chat.completions.create({
        model: POOLS.main,
        messages: [{ role: 'user', content: 'Say hello.' }],
        max_tokens: 4,
        seed: 7,
      });
      expect(r.object).toBe('chat.completion');
      expect(r.choices[0]?.message.role).toBe('assistant');
      expect(typeof r.choices[0]?.message.content).toBe('string');
      expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + (r.usage?.completion_tokens ?? 0));
    },
  },
  {
    state: 'pools are ready',
    description: 'a streamed chat completion answered 200 as SSE',
    request: post(CHAT.path, chatStreamBody, A),
    response: {
      status: 200,
      headers: { ...SSE_CT, ...CID },
      body: sse([
        {
          ...head('chat.completion.chunk', CHAT_ID),
          choices: [
            { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
          ],
          usage: null,
        },
        {
          ...head('chat.completion.chunk', CHAT_ID),
          choices: [{ index: 0, delta: { content: 'Hel' }, logprobs: null, finish_reason: null }],
          usage: null,
        },
        {
          ...head('chat.completion.chunk', CHAT_ID),
          choices: [{ index: 0, delta: { content: 'lo' }, logprobs: null, finish_reason: null }],
          usage: null,
        },
        {
          ...head('chat.completion.chunk', CHAT_ID),
          choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'length' }],
          usage: null,
        },
        { ...head('chat.completion.chunk', CHAT_ID), choices: [], usage: USAGE_EXAMPLE },
      ]),
    },
    bodyRegex: CHAT_STREAM,
    run: async (c) => {
      let text = '';
      let finish: string | null = null;
      let total: number | undefined;
      for await (const chunk of await c.alice.chat.completions.create({
        ...chatStreamBody,
        messages: [{ role: 'user', content: 'Say hello.' }],
        stream: true,
      })) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        total = chunk.usage?.total_tokens ?? total;
      }
      expect(text).not.toBe('');
      expect(finish).toMatch(/^(stop|length)$/);
      expect(total).toBeGreaterThan(0);
    },
  },
  {
    state: 'pools are ready',
    description: 'a text completion answered 200',
    request: post(COMPLETION.path, COMPLETION.body(POOLS.main), A),
    response: {
      status: 200,
      headers: { ...JSON_CT, ...CID },
      body: {
        id: M.regex('^cmpl-[0-9a-f-]+$', CMPL_ID),
        object: 'text_completion',
        created: INT(1764600000),
        model: POOLS.main,
        system_fingerprint: FINGERPRINT,
        choices: [{ index: 0, text: M.string(' there was'), finish_reason: FINISH, logprobs: null }],
        usage,
      },
    },
    run: async (c) => {
      const r = await c.alice.completions.create({
        model: POOLS.main,
        prompt: 'Once upon a time',
        max_tokens: 4,
        seed: 7,
      });
      expect(r.object).toBe('text_completion');
      expect(typeof r.choices[0]?.text).toBe('string');
      expect(r.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
    },
  },
  {
    state: 'pools are ready',
    description: 'a streamed text completion answered 200 as SSE',
    request: post(COMPLETION.path, completionStreamBody, A),
    response: {
      status: 200,
      headers: { ...SSE_CT, ...CID },
      body: sse([
        {
          ...head('text_completion', CMPL_ID),
          choices: [{ index: 0, text: ' there', logprobs: null, finish_reason: null }],
          usage: null,
        },
        {
          ...head('text_completion', CMPL_ID),
          choices: [{ index: 0, text: '', logprobs: null, finish_reason: 'length' }],
          usage: null,
        },
        { ...head('text_completion', CMPL_ID), choices: [], usage: USAGE_EXAMPLE },
      ]),
    },
    bodyRegex: COMPLETION_STREAM,
    run: async (c) => {
      let text = '';
      let finish: string | null = null;
      for await (const chunk of await c.alice.completions.create({ ...completionStreamBody, stream: true })) {
        text += chunk.choices[0]?.text ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(text).not.toBe('');
      expect(finish).toMatch(/^(stop|length)$/);
    },
  },
  {
    state: 'pools are ready',
    description: 'an embedding answered 200, base64 as the client asks by default',
    // The client adds `encoding_format: base64` when the caller sets none, and decodes it.
    request: post(
      EMBEDDING.path,
      { model: POOLS.main, input: ['hello', 'world'], encoding_format: 'base64' },
      A,
    ),
    response: {
      status: 200,
      headers: { ...JSON_CT, ...CID },
      body: {
        object: 'list',
        model: POOLS.main,
        data: [0, 1].map((index) => ({
          object: 'embedding',
          index,
          embedding: M.regex(BASE64, base64Of([0.5, -0.25, 0.125])),
        })),
        usage: { prompt_tokens: INT(2), total_tokens: INT(2) },
      },
    },
    run: async (c) => {
      const r = await c.alice.embeddings.create({ model: POOLS.main, input: ['hello', 'world'] });
      expect(r.data.map((d) => d.index)).toEqual([0, 1]);
      for (const d of r.data) {
        expect(Array.isArray(d.embedding)).toBe(true);
        expect(d.embedding.length).toBeGreaterThan(0);
        expect(d.embedding.every((x) => Number.isFinite(x))).toBe(true);
      }
      expect(r.usage.prompt_tokens).toBeGreaterThan(0);
    },
  },
];

const MODEL = {
  id: M.string(POOLS.main),
  object: 'model',
  created: INT(0),
  owned_by: 'llama-orch',
  max_model_len: INT(2048),
  engines: M.eachLike('llamacpp'),
  ready: M.boolean(true),
};

const models: OpenAiInteraction[] = [
  {
    state: 'pools are ready',
    description: 'a model list answered 200',
    request: get('/v1/models', A),
    response: {
      status: 200,
      headers: { ...JSON_CT, ...CID },
      body: { object: 'list', data: M.eachLike(MODEL) },
    },
    run: async (c) => {
      const ids: string[] = [];
      for await (const m of c.alice.models.list()) ids.push(m.id);
      expect(ids.length).toBeGreaterThan(0);
    },
  },
  {
    description: 'a model list refused 401 UNAUTHORIZED: an unknown API key',
    request: get('/v1/models', OPENAI_PACT_KEYS.wrong),
    response: errorResponse(401, 'UNAUTHORIZED', 'authentication_error', null, {
      'WWW-Authenticate': M.regex('^Bearer( .*)?$', 'Bearer error="invalid_token"'),
    }),
    run: async (c) =>
      void (await refused(c.wrong.models.list(), OpenAI.AuthenticationError, {
        status: 401,
        code: 'UNAUTHORIZED',
        type: 'authentication_error',
        param: null,
      })),
  },
  {
    description: 'a model list refused 403 FORBIDDEN: a key without the data scope',
    request: get('/v1/models', OPENAI_PACT_KEYS.ops),
    response: errorResponse(403, 'FORBIDDEN', 'permission_error', null),
    run: async (c) =>
      void (await refused(c.ops.models.list(), OpenAI.PermissionDeniedError, {
        status: 403,
        code: 'FORBIDDEN',
        type: 'permission_error',
        param: null,
      })),
  },
  {
    state: 'the next request fails with an internal error',
    description: 'a model list refused 500 INTERNAL: an internal fault',
    request: get('/v1/models', A),
    response: errorResponse(500, 'INTERNAL', 'server_error', null),
    run: async (c) =>
      void (await refused(c.alice.models.list(), OpenAI.InternalServerError, {
        status: 500,
        code: 'INTERNAL',
        type: 'server_error',
        param: null,
      })),
  },
  {
    state: 'pools are ready',
    description: 'a model read answered 200',
    request: get(`/v1/models/${POOLS.main}`, A),
    response: {
      status: 200,
      headers: { ...JSON_CT, ...CID },
      body: { ...MODEL, id: POOLS.main, engines: ['llamacpp'], ready: true },
    },
    run: async (c) => {
      const m = await c.alice.models.retrieve(POOLS.main);
      expect([m.id, m.object, m.owned_by]).toEqual([POOLS.main, 'model', 'llama-orch']);
    },
  },
  {
    description: 'a model read refused 401 UNAUTHORIZED: an unknown API key',
    request: get(`/v1/models/${POOLS.main}`, OPENAI_PACT_KEYS.wrong),
    response: errorResponse(401, 'UNAUTHORIZED', 'authentication_error', null, {
      'WWW-Authenticate': M.regex('^Bearer( .*)?$', 'Bearer error="invalid_token"'),
    }),
    run: async (c) =>
      void (await refused(c.wrong.models.retrieve(POOLS.main), OpenAI.AuthenticationError, {
        status: 401,
        code: 'UNAUTHORIZED',
        type: 'authentication_error',
        param: null,
      })),
  },
  {
    description: 'a model read refused 403 FORBIDDEN: a key without the data scope',
    request: get(`/v1/models/${POOLS.main}`, OPENAI_PACT_KEYS.ops),
    response: errorResponse(403, 'FORBIDDEN', 'permission_error', null),
    run: async (c) =>
      void (await refused(c.ops.models.retrieve(POOLS.main), OpenAI.PermissionDeniedError, {
        status: 403,
        code: 'FORBIDDEN',
        type: 'permission_error',
        param: null,
      })),
  },
  {
    description: 'a model read refused 404 NOT_FOUND: no served model has the id',
    request: get('/v1/models/no-such-model', A),
    response: errorResponse(404, 'NOT_FOUND', 'not_found_error', null),
    run: async (c) =>
      void (await refused(c.alice.models.retrieve('no-such-model'), OpenAI.NotFoundError, {
        status: 404,
        code: 'NOT_FOUND',
        type: 'not_found_error',
        param: null,
      })),
  },
  {
    state: 'the next request fails with an internal error',
    description: 'a model read refused 500 INTERNAL: an internal fault',
    request: get(`/v1/models/${POOLS.main}`, A),
    response: errorResponse(500, 'INTERNAL', 'server_error', null),
    run: async (c) =>
      void (await refused(c.alice.models.retrieve(POOLS.main), OpenAI.InternalServerError, {
        status: 500,
        code: 'INTERNAL',
        type: 'server_error',
        param: null,
      })),
  },
];

/** Every interaction of the `openai-node` consumer, in the order the pact file lists them. */
export const OPENAI_INTERACTIONS: readonly OpenAiInteraction[] = [
  ...answers,
  ...refusals(CHAT),
  ...refusals(COMPLETION),
  ...refusals(EMBEDDING),
  ...models,
];
