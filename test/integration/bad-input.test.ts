/**
 * Hostile and malformed input (issue 18): every case a red-team fuzz run found answering 5xx or
 * outside the error envelope is a named regression here. Each answer must be a 4xx (or a
 * retriable 503) carrying the envelope and an `X-Correlation-Id`.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyRequest } from 'fastify';
import { OrchError } from '../../src/errors/orch-error.js';
import { sha256Hex } from '../../src/http/auth.js';
import { admissionAnswer } from '../../src/http/error-handler.js';
import { MAX_JSON_DEPTH } from '../../src/http/json-body.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  startHarness,
  task,
  type Harness,
  type Reply,
} from '../support/harness.js';

const NODE_CRED = 'node-n1-credential';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    nodes: [{ id: 'n1', sha256: sha256Hex(NODE_CRED) }],
    catalog: { allowed_sources: ['path', 'file'] },
    limits: { request_timeout_ms: 1_000, body_limit_bytes: 4 * 1_048_576 },
    pools: [
      simPool('gen', 'vllm'),
      simPool('emb', 'vllm', {
        launch: { worker: 'sim', parallel: 2, extra_args: ['--task', 'embed'], sim: { tokens_per_s: 2_000 } },
      }),
    ],
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

/** A 4xx answer in the envelope, with a correlation id, whose message names `field`. */
function expectRefusal(r: Reply, status: number, field?: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('x-correlation-id')).toBeTruthy();
  const env = r.json as { code?: unknown; message?: unknown };
  expect(typeof env.code, r.text).toBe('string');
  expect(typeof env.message, r.text).toBe('string');
  if (field !== undefined) expect(env.message).toContain(field);
}

const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const raw = (path: string, body: string, key?: string, method = 'POST') =>
  call(h.url, method, path, { rawBody: body, undocumented: true, ...(key === undefined ? {} : { key }) });

describe('bad input never gets a 5xx (issue 18)', () => {
  it('a node report whose replica names no base_url is 400, not a 500 from building its adapter', async () => {
    const report = {
      node_id: 'n1',
      pools: [{ pool_id: 'gen', simulated: true, replicas: [{ replica_id: 'r0', state: 'ready' }] }],
    };
    for (const path of ['/v1/nodes/register', '/v1/nodes/n1/heartbeat']) {
      const r = await call(h.url, 'POST', path, {
        body: report,
        headers: { authorization: `Bearer ${NODE_CRED}` },
      });
      expectRefusal(r, 400, 'base_url');
    }
  });

  it('JSON nested 3,000 levels deep is 400 on tasks, artifacts, catalog and node heartbeat', async () => {
    const body = `{"prompt":${deep(3_000)}}`;
    expectRefusal(await raw('/v1/tasks', body, KEYS.alice), 400, 'nested');
    expectRefusal(await raw('/v1/artifacts', `{"kind":"plan","content":${deep(3_000)}}`, KEYS.alice), 400);
    expectRefusal(await raw('/v1/catalog/models', `{"id":"d","source":${deep(3_000)}}`, KEYS.ops), 400);
    const hb = await call(h.url, 'POST', '/v1/nodes/n1/heartbeat', {
      rawBody: `{"node_id":"n1","pools":${deep(3_000)}}`,
      headers: { authorization: `Bearer ${NODE_CRED}` },
      undocumented: true,
    });
    expectRefusal(hb, 400);
    // The documented depth itself is fine: an artifact nested exactly to the limit is stored.
    const content = deep(MAX_JSON_DEPTH - 1);
    const ok = await raw('/v1/artifacts', `{"kind":"plan","content":${content}}`, KEYS.alice);
    expect(ok.status, ok.text).toBe(201);
  });

  it('a repeated query parameter on GET /v1/artifacts is 400 naming it', async () => {
    const r = await call(h.url, 'GET', '/v1/artifacts?tag=a&tag=b', { key: KEYS.alice });
    expectRefusal(r, 400, 'tag');
    expectRefusal(
      await call(h.url, 'GET', '/v1/artifacts?limit=1&limit=2', { key: KEYS.alice }),
      400,
      'limit',
    );
  });

  it('GET /docs/constructor (a prototype member) is a 404 envelope', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
      expectRefusal(await call(h.url, 'GET', `/docs/${name}`, { undocumented: true }), 404);
  });

  it('a number beyond a double ({"content":1e999}) is 400 naming the field', async () => {
    expectRefusal(await raw('/v1/artifacts', '{"kind":"plan","content":1e999}', KEYS.alice), 400, 'content');
    const t = JSON.stringify(task('gen', { engine: 'vllm' })).replace(
      /"max_tokens":16/,
      '"max_tokens":1e999',
    );
    expectRefusal(await raw('/v1/tasks', t, KEYS.alice), 400, 'max_tokens');
  });

  it('catalog source file://otherhost/x is 400 naming source', async () => {
    const r = await call(h.url, 'POST', '/v1/catalog/models', {
      key: KEYS.ops,
      body: { id: 'remote-file', source: 'file://otherhost/x' },
      undocumented: true,
    });
    expectRefusal(r, 400, 'source');
  });

  it('an engine fault during admission is a retriable 503 POOL_UNAVAILABLE, never a 502', () => {
    const req = { method: 'POST', routeOptions: { url: '/v1/tasks' } } as unknown as FastifyRequest;
    for (const code of ['WORKER_RESET', 'DECODE_TIMEOUT'] as const) {
      const answer = admissionAnswer(
        new OrchError(code, 'replica r0 died', { engine: 'vllm', poolId: 'gen' }),
        req,
      );
      expect(answer.code).toBe('POOL_UNAVAILABLE');
      expect(answer.httpStatus).toBe(503);
      expect(answer.retriable).toBe(true);
      expect(answer.retryAfterMs).toBeGreaterThan(0);
      expect(answer.toEnvelope()).toMatchObject({ engine: 'vllm', pool_id: 'gen' });
    }
    // Elsewhere (a stream's terminal error, a control call) the engine fault keeps its code.
    const other = {
      method: 'GET',
      routeOptions: { url: '/v1/tasks/:id/stream' },
    } as unknown as FastifyRequest;
    expect(admissionAnswer(new OrchError('WORKER_RESET', 'x'), other).code).toBe('WORKER_RESET');
  });

  it('embedding inputs are bounded: more than 256 inputs or 1 MiB in all is 400 naming inputs', async () => {
    const embed = (inputs: string[]) => {
      const body = task('emb', { engine: 'vllm', workload: 'embedding', inputs });
      delete (body as Record<string, unknown>)['prompt'];
      return call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
    };
    expectRefusal(await embed(Array.from({ length: 257 }, (_, i) => `input ${i}`)), 400, 'inputs');
    expectRefusal(await embed(Array.from({ length: 200 }, () => 'x'.repeat(6_000))), 400, 'inputs');
    const ok = await embed(Array.from({ length: 256 }, (_, i) => `input ${i}`));
    expect(ok.status, ok.text).toBe(202);
    const openai = await call(h.url, 'POST', '/v1/embeddings', {
      key: KEYS.alice,
      body: { model: 'emb', input: Array.from({ length: 257 }, () => 'a') },
    });
    expect(openai.status, openai.text).toBe(400);
    expect(openai.text).toContain('input');
  });

  it('bad %-encoding and over-long path parameters get the envelope with X-Correlation-Id', async () => {
    const bad = await call(h.url, 'GET', '/v1/tasks/%E0%A4%A/stream', {
      key: KEYS.alice,
      undocumented: true,
    });
    expectRefusal(bad, 400, 'path');
    const long = await call(h.url, 'GET', `/v1/tasks/${'a'.repeat(5_000)}/stream`, {
      key: KEYS.alice,
      undocumented: true,
    });
    expectRefusal(long, 400, 'path');
    // A documented id length (a 512-character model id) still reaches its handler.
    const model = await call(h.url, 'GET', `/v1/models/${'m'.repeat(512)}`, {
      key: KEYS.alice,
      undocumented: true,
    });
    expect(model.status).toBe(404);
  });

  it('a request body not received within limits.request_timeout_ms is answered 408 in the envelope', async () => {
    const { port } = new URL(h.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
      socket.on('end', () => resolve(got));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
      socket.write(
        `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"task_id":',
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/X-Correlation-Id: \S+/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      code: string;
      retriable: boolean;
    };
    expect(body.code).toBe('INVALID_PARAMS');
    expect(body.retriable).toBe(true);
  });

  it('an unknown sampler_profile_version is refused at admission', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('gen', { engine: 'vllm', sampler_profile_version: 'v9' }),
    });
    expectRefusal(r, 400, 'sampler_profile_version');
  });

  it('limit above the documented maximum (1000) on GET /v1/artifacts is 400', async () => {
    expectRefusal(await call(h.url, 'GET', '/v1/artifacts?limit=1001', { key: KEYS.alice }), 400, 'limit');
    expectRefusal(await call(h.url, 'GET', '/v1/artifacts?limit=1.5', { key: KEYS.alice }), 400, 'limit');
    expect((await call(h.url, 'GET', '/v1/artifacts?limit=1000', { key: KEYS.alice })).status).toBe(200);
  });

  it('the credential is checked before the body is read; a bodiless JSON request is no body', async () => {
    // Unauthenticated: 401 whatever the body (malformed, nested, or absent but labelled JSON).
    expectRefusal(await raw('/v1/tasks', '{"not json'), 401);
    expectRefusal(await raw('/v1/tasks', `{"prompt":${deep(200_000)}}`), 401);
    const bodiless = await call(h.url, 'DELETE', '/v1/sessions/s1', {
      headers: { 'content-type': 'application/json' },
      undocumented: true,
    });
    expectRefusal(bodiless, 401);
    // Authenticated, the same bodiless request reaches its handler (the session is unknown).
    const known = await call(h.url, 'DELETE', '/v1/sessions/s1', {
      key: KEYS.alice,
      headers: { 'content-type': 'application/json' },
      undocumented: true,
    });
    expect(known.status, known.text).toBe(404);
    // Scopes are still the handlers': a data key on the control plane is 403.
    expectRefusal(await call(h.url, 'POST', '/v1/catalog/models', { key: KEYS.alice, body: {} }), 403);
  });
});
