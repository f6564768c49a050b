/**
 * Consumer contracts of the tool proxy (SPEC §10): every status of `POST /v1/tools/fetch` and
 * `POST /v1/tools/search`. The provider's tool policy (test/contract/pact.test.ts) allows
 * loopback; the fetched pages are the provider's own test upstream, whose address the provider
 * state injects into the request (`fromProviderState`).
 */
import { MatchersV3 as M, type V3Request, type V3Response } from '@pact-foundation/pact';
import { expect } from 'vitest';
import { OrchHttpError } from '../../src/index.js';
import type { Interaction } from './interactions.js';

const JSON_CT = { 'Content-Type': 'application/json; charset=utf-8' };
const CID = {
  'X-Correlation-Id': M.regex('^[A-Za-z0-9._:-]{1,128}$', '5d1e3c9a-7f0b-4d2e-8a61-0c9b2f4e7a13'),
};
const EXAMPLE_BASE = 'http://127.0.0.1:8080';

const post = (path: string, body: unknown, key?: string): V3Request => ({
  method: 'POST',
  path,
  headers: {
    'Content-Type': 'application/json',
    ...(key === undefined ? {} : { Authorization: `Bearer ${key}` }),
  },
  body,
});

function envelope(
  status: number,
  code: string,
  retriable: boolean,
  extra: Record<string, unknown> = {},
  headers = {},
): V3Response {
  return {
    status,
    headers: { ...JSON_CT, ...CID, ...headers },
    body: { code, message: M.string(`${code.toLowerCase()} explained`), retriable, ...extra },
  };
}

async function fails(p: Promise<unknown>, status: number, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OrchHttpError);
  expect([(err as OrchHttpError).status, (err as OrchHttpError).code]).toEqual([status, code]);
}

/** @param keys the data-plane keys of the provider's tenants (`limited` has a spent tool rate). */
export function toolInteractions(keys: { alice: string; limited: string; ops: string }): Interaction[] {
  const A = keys.alice;
  const page = `${EXAMPLE_BASE}/__test/tool-upstream/page`;
  const rateLimited = envelope(
    429,
    'ADMISSION_REJECT',
    true,
    { retry_after_ms: M.integer(1000), policy_label: 'reject' },
    { 'Retry-After': M.regex('^[1-9][0-9]*$', '1'), 'X-Backoff-Ms': M.regex('^[0-9]+$', '1000') },
  );
  return [
    {
      state: 'the tool proxy can reach a test upstream',
      description: 'a tool fetch of an allowed page',
      request: post(
        '/v1/tools/fetch',
        { url: M.fromProviderState('${base}/__test/tool-upstream/page', page) },
        A,
      ),
      response: {
        status: 200,
        headers: { ...JSON_CT, ...CID },
        body: {
          url: M.string(page),
          status: 200,
          headers: M.like({ 'content-type': 'text/plain; charset=utf-8' }),
          content_type: 'text/plain',
          encoding: 'utf8',
          body: 'A page for the tool proxy, from [redacted].',
          bytes: M.integer(47),
          truncated: false,
          redirects: 0,
        },
      },
      run: async (c) => {
        const r = await c.alice.toolFetch({ url: page });
        expect(r.body).toBe('A page for the tool proxy, from [redacted].');
      },
    },
    {
      description: 'a tool fetch with a method other than GET or HEAD',
      request: post('/v1/tools/fetch', { url: 'http://127.0.0.1:1/', method: 'POST' }, A),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) =>
        fails(
          c.alice.toolFetch({ url: 'http://127.0.0.1:1/', method: 'POST' as 'GET' }),
          400,
          'INVALID_PARAMS',
        ),
    },
    {
      description: 'a tool fetch without credentials',
      request: post('/v1/tools/fetch', { url: 'http://127.0.0.1:1/' }),
      response: envelope(
        401,
        'UNAUTHORIZED',
        false,
        {},
        { 'WWW-Authenticate': M.regex('^Bearer', 'Bearer') },
      ),
      run: async (c) => fails(c.anonymous.toolFetch({ url: 'http://127.0.0.1:1/' }), 401, 'UNAUTHORIZED'),
    },
    {
      description: 'a tool fetch of a denied domain',
      request: post('/v1/tools/fetch', { url: 'http://denied.example/' }, A),
      response: envelope(403, 'FORBIDDEN', false),
      run: async (c) => fails(c.alice.toolFetch({ url: 'http://denied.example/' }), 403, 'FORBIDDEN'),
    },
    {
      state: 'the tool rate of the tenant is spent',
      params: { tenant: 'limited' },
      description: 'a tool fetch over the tenant tool rate',
      request: post('/v1/tools/fetch', { url: 'http://127.0.0.1:1/' }, keys.limited),
      response: rateLimited,
      run: async (c) => fails(c.limited.toolFetch({ url: 'http://127.0.0.1:1/' }), 429, 'ADMISSION_REJECT'),
    },
    {
      state: 'the next request fails with an internal error',
      description: 'a tool fetch that meets an internal fault',
      request: post('/v1/tools/fetch', { url: 'http://127.0.0.1:1/' }, A),
      response: envelope(500, 'INTERNAL', false),
      run: async (c) => fails(c.alice.toolFetch({ url: 'http://127.0.0.1:1/' }), 500, 'INTERNAL'),
    },
    {
      description: 'a tool fetch of an upstream that refuses connections',
      request: post('/v1/tools/fetch', { url: 'http://127.0.0.1:1/' }, A),
      response: envelope(502, 'UPSTREAM_FAILED', true),
      run: async (c) => fails(c.alice.toolFetch({ url: 'http://127.0.0.1:1/' }), 502, 'UPSTREAM_FAILED'),
    },
    {
      state: 'the tool proxy can reach a test upstream',
      description: 'a tool fetch of an upstream that never answers',
      request: post(
        '/v1/tools/fetch',
        {
          url: M.fromProviderState(
            '${base}/__test/tool-upstream/hang',
            `${EXAMPLE_BASE}/__test/tool-upstream/hang`,
          ),
        },
        A,
      ),
      response: envelope(504, 'UPSTREAM_TIMEOUT', true),
      run: async (c) =>
        fails(
          c.alice.toolFetch({ url: `${EXAMPLE_BASE}/__test/tool-upstream/hang` }),
          504,
          'UPSTREAM_TIMEOUT',
        ),
    },
    {
      description: 'a tool search',
      request: post('/v1/tools/search', { query: 'llama', max_results: 1 }, A),
      response: {
        status: 200,
        headers: { ...JSON_CT, ...CID },
        body: {
          query: 'llama',
          results: [
            {
              title: 'Result A',
              url: 'https://docs.example.com/a',
              snippet: M.string('Write to [redacted]'),
            },
          ],
        },
      },
      run: async (c) => {
        const r = await c.alice.toolSearch({ query: 'llama', max_results: 1 });
        expect(r.results).toHaveLength(1);
      },
    },
    {
      description: 'a tool search with an empty query',
      request: post('/v1/tools/search', { query: '' }, A),
      response: envelope(400, 'INVALID_PARAMS', false),
      run: async (c) => fails(c.alice.toolSearch({ query: '' }), 400, 'INVALID_PARAMS'),
    },
    {
      description: 'a tool search without credentials',
      request: post('/v1/tools/search', { query: 'llama' }),
      response: envelope(
        401,
        'UNAUTHORIZED',
        false,
        {},
        { 'WWW-Authenticate': M.regex('^Bearer', 'Bearer') },
      ),
      run: async (c) => fails(c.anonymous.toolSearch({ query: 'llama' }), 401, 'UNAUTHORIZED'),
    },
    {
      description: 'a tool search with a control-plane key',
      request: post('/v1/tools/search', { query: 'llama' }, keys.ops),
      response: envelope(403, 'FORBIDDEN', false),
      run: async (c) => fails(c.ops.toolSearch({ query: 'llama' }), 403, 'FORBIDDEN'),
    },
    {
      state: 'the tool rate of the tenant is spent',
      params: { tenant: 'limited' },
      description: 'a tool search over the tenant tool rate',
      request: post('/v1/tools/search', { query: 'llama' }, keys.limited),
      response: rateLimited,
      run: async (c) => fails(c.limited.toolSearch({ query: 'llama' }), 429, 'ADMISSION_REJECT'),
    },
    {
      state: 'the next request fails with an internal error',
      description: 'a tool search that meets an internal fault',
      request: post('/v1/tools/search', { query: 'llama' }, A),
      response: envelope(500, 'INTERNAL', false),
      run: async (c) => fails(c.alice.toolSearch({ query: 'llama' }), 500, 'INTERNAL'),
    },
    {
      description: 'a tool search whose provider fails',
      request: post('/v1/tools/search', { query: 'fail' }, A),
      response: envelope(502, 'UPSTREAM_FAILED', true),
      run: async (c) => fails(c.alice.toolSearch({ query: 'fail' }), 502, 'UPSTREAM_FAILED'),
    },
    {
      description: 'a tool search whose provider never answers',
      request: post('/v1/tools/search', { query: 'hang' }, A),
      response: envelope(504, 'UPSTREAM_TIMEOUT', true),
      run: async (c) => fails(c.alice.toolSearch({ query: 'hang' }), 504, 'UPSTREAM_TIMEOUT'),
    },
  ];
}
