/** The OpenAPI documents are the source of truth: structure, versions, codes and request validation. */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors/codes.js';
import { API_VERSION } from '../../src/http/generated/api-version.js';
import { createRequestValidator, loadOpenApi, type OpenApiDocument } from '../../src/http/openapi.js';
import { expectValidResponse, expectValidSseEvent } from '../support/openapi-response.js';

const docs = loadOpenApi();
const { validateTaskRequest } = createRequestValidator(docs);

function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolves(doc: OpenApiDocument, ref: string): boolean {
  let cur: unknown = doc;
  for (const p of ref.replace(/^#\//, '').split('/')) {
    cur = (cur as Record<string, unknown> | undefined)?.[p];
  }
  return cur !== undefined;
}

const valid = () => ({
  task_id: randomUUID(),
  session_id: randomUUID(),
  workload: 'completion',
  model_ref: 'tiny',
  engine: 'llamacpp',
  ctx: 512,
  priority: 'interactive',
  prompt: 'hi',
  max_tokens: 8,
  deadline_ms: 1000,
});

describe('OpenAPI documents', () => {
  it('are OpenAPI 3.1 with the same info.version, which is the generated API_VERSION', () => {
    for (const doc of [docs.data, docs.control]) {
      expect(doc.openapi).toBe('3.1.0');
      expect(doc.info.version).toBe(API_VERSION);
    }
  });

  it('resolve every $ref locally', () => {
    for (const doc of [docs.data, docs.control]) {
      const all = refs(doc);
      expect(all.length).toBeGreaterThan(10);
      for (const r of all) expect(resolves(doc, r), r).toBe(true);
    }
  });

  it('list exactly the error codes of the code table, in both planes', () => {
    const codes = Object.keys(ERROR_CODES).sort();
    for (const doc of [docs.data, docs.control]) {
      const schema = doc.components.schemas['ErrorCode'] as { enum: string[] };
      expect([...schema.enum].sort()).toEqual(codes);
    }
    expect(docs.control.components.schemas['ErrorEnvelope']).toEqual(
      (({ examples: _e, ...rest }) => rest)(
        docs.data.components.schemas['ErrorEnvelope'] as Record<string, unknown>,
      ),
    );
  });

  it('document a status for every HTTP-reachable error code on POST /v1/tasks', () => {
    const responses = (docs.data.paths['/v1/tasks']?.['post'] as { responses: Record<string, unknown> })
      .responses;
    for (const [code, { httpStatus }] of Object.entries(ERROR_CODES)) {
      // The tool proxy's upstream codes belong to /v1/tools/*, not to a submission.
      if (
        [
          'NOT_FOUND',
          'EVENTS_EXPIRED',
          'NOT_IMPLEMENTED',
          'DECODE_TIMEOUT',
          'WORKER_RESET',
          'UPSTREAM_FAILED',
          'UPSTREAM_TIMEOUT',
        ].includes(code)
      )
        continue;
      expect(Object.keys(responses), code).toContain(String(httpStatus));
    }
  });
});

describe('TaskRequest validation (derived from data.yaml)', () => {
  it('accepts a valid body and applies documented defaults', () => {
    const r = validateTaskRequest(valid());
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toMatchObject({ determinism: 'strict', sampler_profile_version: 'v1' });
  });

  const bad: [string, (b: Record<string, unknown>) => void, string][] = [
    ['missing task_id', (b) => delete b['task_id'], 'task_id'],
    ['bad uuid', (b) => (b['session_id'] = 'x'), 'session_id'],
    ['unknown field', (b) => (b['colour'] = 1), 'colour'],
    ['both prompt and inputs', (b) => (b['inputs'] = ['a']), 'prompt'],
    ['neither prompt nor inputs', (b) => delete b['prompt'], 'prompt'],
    ['max_tokens 0', (b) => (b['max_tokens'] = 0), 'max_tokens'],
    ['bad enum', (b) => (b['engine'] = 'ollama'), 'engine'],
    ['wrong type', (b) => (b['ctx'] = '512'), 'ctx'],
  ];
  for (const [name, mutate, field] of bad) {
    it(`rejects ${name}, naming ${field}`, () => {
      const body: Record<string, unknown> = valid();
      mutate(body);
      const r = validateTaskRequest(body);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.field).toBe(field);
    });
  }

  it('rejects non-objects', () => {
    expect(validateTaskRequest([1]).ok).toBe(false);
    expect(validateTaskRequest('x').ok).toBe(false);
  });
});

describe('response validator used by the integration tests', () => {
  it('accepts documented bodies and rejects undocumented statuses, bodies and missing headers', () => {
    const headers = { 'x-correlation-id': 'c' };
    const accepted = { task_id: 't', queue_position: 0, predicted_start_ms: 0, backoff_ms: 0 };
    expectValidResponse({ method: 'POST', path: '/v1/tasks', status: 202, headers, body: accepted });
    expect(() =>
      expectValidResponse({ method: 'POST', path: '/v1/tasks', status: 418, headers, body: {} }),
    ).toThrow(/not documented/);
    expect(() =>
      expectValidResponse({
        method: 'POST',
        path: '/v1/tasks',
        status: 202,
        headers,
        body: { task_id: 't' },
      }),
    ).toThrow(/schema/);
    expect(() =>
      expectValidResponse({
        method: 'POST',
        path: '/v1/tasks',
        status: 429,
        headers,
        body: { code: 'ADMISSION_REJECT', message: 'm' },
      }),
    ).toThrow(/Retry-After/);
    expect(() => expectValidResponse({ method: 'GET', path: '/v1/nope', status: 200, body: {} })).toThrow(
      /not documented/,
    );
    expectValidResponse({
      method: 'GET',
      path: `/v1/sessions/${randomUUID()}`,
      status: 404,
      headers,
      body: { code: 'NOT_FOUND', message: 'x' },
    });
  });

  it('checks SSE payloads', () => {
    expectValidSseEvent('token', { t: 'a', i: 0, id: 5 });
    expect(() => expectValidSseEvent('token', { t: 'a', i: -1 })).toThrow();
    expect(() => expectValidSseEvent('end', { tokens_out: 1 })).toThrow();
    expect(() => expectValidSseEvent('bogus', {})).toThrow(/not documented/);
  });
});
