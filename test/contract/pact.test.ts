/**
 * Consumer-driven contracts (SPEC §16): the consumer suite runs the typed client against Pact's
 * mock for every interaction and writes `contracts/pacts/llorch-client-llama-orch.json`; the
 * provider suite replays that file against a real orchestrator, with provider states set up
 * through its test-only state endpoint. A mutated provider must fail verification.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MatchersV3, PactV3, Verifier } from '@pact-foundation/pact';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import { OrchClient } from '../../src/index.js';
import { simPool, startHarness, type Harness } from '../support/harness.js';
import { INTERACTIONS, PACT_DIR, PACT_KEYS, type Clients } from './interactions.js';

process.env['PACT_DO_NOT_TRACK'] = 'true';
const PACTS = join(process.cwd(), 'contracts', 'pacts');
const PACT_FILE = join(PACTS, 'llorch-client-llama-orch.json');

function clients(url: string, dispatcher: Agent): Clients {
  // A fresh connection pool per mock server: a port reused by a later mock must not meet a
  // kept-alive socket to an earlier one.
  const make = (apiKey?: string) =>
    new OrchClient({ baseUrl: url, apiKey, retry: { maxAttempts: 1 }, dispatcher });
  return {
    alice: make(PACT_KEYS.alice),
    ops: make(PACT_KEYS.ops),
    limited: make(PACT_KEYS.limited),
    anonymous: make(),
  };
}

describe('consumer: the typed client against the Pact mock', () => {
  beforeAll(async () => {
    await mkdir(PACTS, { recursive: true });
    await rm(PACT_FILE, { force: true });
  });

  /** One interaction against a fresh mock; resolves with what the client threw, if anything. */
  async function verifyInteraction(i: (typeof INTERACTIONS)[number]): Promise<void> {
    const pact = new PactV3({
      consumer: 'llorch-client',
      provider: 'llama-orch',
      dir: PACTS,
      logLevel: 'error',
    });
    if (i.state !== undefined) pact.given(i.state, i.params as Parameters<PactV3['given']>[1]);
    pact.uponReceiving(i.description).withRequest(i.request).willRespondWith(i.response);
    if (i.bodyRegex !== undefined)
      pact.withResponseMatchingRules(i.request, {
        body: { path: '$', rules: [MatchersV3.regex(i.bodyRegex, String(i.response.body))] },
      });
    const dispatcher = new Agent();
    let clientError: unknown;
    try {
      await pact.executeTest(async (mock) => {
        try {
          await i.run(clients(mock.url, dispatcher));
        } catch (err) {
          clientError = err;
          throw err;
        }
      });
    } catch (err) {
      // Pact reports only the mock's side; say what the client saw too.
      const cause = (clientError as { cause?: { code?: string; message?: string } } | undefined)?.cause;
      const message = (err as Error).message;
      // The client got an answer that the mock never saw: the request reached another server
      // (a port handed out again on a busy runner), not this contract.
      const elsewhere = clientError === undefined && /expected but not received/.test(message);
      throw Object.assign(
        new Error(`${message}\nclient: ${String(clientError)} ${cause?.code ?? ''} ${cause?.message ?? ''}`),
        { connectionFailed: cause?.code !== undefined || elsewhere },
      );
    } finally {
      await dispatcher.close();
    }
  }

  for (const i of INTERACTIONS) {
    it(i.description, async () => {
      try {
        await verifyInteraction(i);
      } catch (err) {
        // A connection that never reached the mock (seen on a loaded 2-core runner) says nothing
        // about the contract: one more try on a fresh mock; any contract mismatch fails at once.
        if ((err as { connectionFailed?: boolean }).connectionFailed !== true) throw err;
        await verifyInteraction(i);
      }
    });
  }

  it('covers every operation of both OpenAPI documents', async () => {
    const pact = JSON.parse(await readFile(PACT_FILE, 'utf8')) as {
      interactions: { request: { method: string; path: string }; response: { status: number } }[];
    };
    const seen = new Set(
      pact.interactions.map(
        (x) =>
          `${x.request.method} ${x.request.path.replace(/\/(00000000-[\w-]+|sha256:\w+|pact-[\w-]+|nope)(?=\/|$)/g, '/{id}')}`,
      ),
    );
    for (const op of [
      'POST /v1/tasks',
      'GET /v1/tasks/{id}/stream',
      'POST /v1/tasks/{id}/cancel',
      'GET /v1/sessions/{id}',
      'DELETE /v1/sessions/{id}',
      'GET /metrics',
      'POST /v1/pools/{id}/drain',
      'POST /v1/pools/{id}/reload',
      'GET /v1/pools/{id}/health',
      'GET /v1/replicasets',
      'GET /v1/capabilities',
      'GET /v1/catalog/models',
      'POST /v1/catalog/models',
      'GET /v1/catalog/models/{id}',
      'POST /v1/catalog/models/{id}/verify',
      'POST /v1/catalog/models/{id}/state',
      'GET /v1/artifacts',
      'POST /v1/artifacts',
      'GET /v1/artifacts/{id}',
    ])
      expect(seen, op).toContain(op);
    const enqueue = pact.interactions.filter(
      (x) => x.request.method === 'POST' && x.request.path === '/v1/tasks',
    );
    expect(new Set(enqueue.map((x) => x.response.status))).toEqual(
      new Set([202, 400, 401, 403, 409, 413, 422, 429, 500, 503]),
    );
    const stream = pact.interactions.filter(
      (x) => x.request.method === 'GET' && x.request.path.endsWith('/stream'),
    );
    expect(new Set(stream.map((x) => x.response.status))).toEqual(new Set([200, 400, 401, 404, 410]));
  });
});

describe('provider: a real orchestrator honours every interaction', () => {
  let h: Harness;
  beforeAll(async () => {
    await mkdir(PACT_DIR, { recursive: true });
    await writeFile(join(PACT_DIR, 'reload-a.bin'), 'a');
    const key = (id: string, raw: string, scope: 'data' | 'control') => ({
      id,
      tenant: id,
      sha256: sha256Hex(raw),
      scopes: [scope],
    });
    h = await startHarness({
      testing: { provider_states: true },
      auth: {
        keys: [
          key('alice', PACT_KEYS.alice, 'data'),
          key('ops', PACT_KEYS.ops, 'control'),
          key('limited', PACT_KEYS.limited, 'data'),
        ],
      },
      limits: { body_limit_bytes: 16_384 },
      // Small enough that a 64-token task drops early events (the 410 interaction), large enough
      // for the streams replayed in full.
      sse: { max_events_per_task: 16 },
      storage: { max_artifact_bytes: 4096 },
      fairness: { tenants: [{ id: 'limited', rps: 0.001, burst: 1 }] },
      catalog: { trust_policy: 'permissive' },
      pools: [
        simPool('pact-sim', 'vllm', { launch: { worker: 'sim', parallel: 4 } }),
        simPool('pact-slow', 'vllm', { launch: { worker: 'sim', parallel: 2, sim: { tokens_per_s: 5 } } }),
        simPool('pact-timeout', 'vllm', {
          timeouts: { wall_ms: 300 },
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } },
        }),
        simPool('pact-full', 'vllm', {
          queue: { capacity: 1, full_policy: 'drop-lru' },
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 2 } },
        }),
        simPool('pact-down', 'vllm'),
        simPool('pact-drain', 'vllm'),
        simPool('pact-reload', 'vllm', {
          model: { id: 'pact-reload', path: join(PACT_DIR, 'reload-a.bin') },
        }),
        simPool('pact-old', 'vllm'),
      ],
    });
  }, 60_000);
  afterAll(() => h.close());

  it('verifies the committed pact file', async () => {
    await new Verifier({
      provider: 'llama-orch',
      providerBaseUrl: h.url,
      pactUrls: [PACT_FILE],
      providerStatesSetupUrl: `${h.url}/__test/provider-states`,
      logLevel: 'warn',
    }).verifyProvider();
  }, 120_000);

  it('fails verification when a response loses a field or changes its status', async () => {
    const pact = JSON.parse(await readFile(PACT_FILE, 'utf8')) as { interactions: { description: string }[] };
    const dir = join(tmpdir(), `llorch-pact-mutation-${process.pid}`);
    await mkdir(dir, { recursive: true });
    const only = async (name: string, description: string): Promise<string> => {
      const file = join(dir, `${name}.json`);
      await writeFile(
        file,
        JSON.stringify({
          ...pact,
          interactions: pact.interactions.filter((x) => x.description === description),
        }),
      );
      return file;
    };
    const verify = async (proxy: string, file: string): Promise<unknown> =>
      new Verifier({
        provider: 'llama-orch',
        providerBaseUrl: proxy,
        pactUrls: [file],
        providerStatesSetupUrl: `${h.url}/__test/provider-states`,
        logLevel: 'error',
      })
        .verifyProvider()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
    // Control: the unmodified proxy passes, so failures below come from the mutations alone.
    const passthrough = await mutatingProxy(h.url, () => undefined);
    const health = await only('health', 'a health read of a pool');
    expect(await verify(passthrough.url, health)).toBeUndefined();
    passthrough.server.close();

    const dropField = await mutatingProxy(h.url, (m) => {
      if (m.path.endsWith('/health') && m.body !== undefined)
        delete (m.body as Record<string, unknown>)['draining'];
    });
    expect(await verify(dropField.url, health)).toBeInstanceOf(Error);
    dropField.server.close();

    const changeStatus = await mutatingProxy(h.url, (m) => {
      if (m.path.endsWith('/health')) m.status = 203;
    });
    expect(await verify(changeStatus.url, health)).toBeInstanceOf(Error);
    changeStatus.server.close();
  }, 60_000);
});

interface Mutable {
  readonly path: string;
  status: number;
  body: unknown;
}

/** A proxy in front of the provider that lets a test rewrite JSON responses. */
async function mutatingProxy(
  target: string,
  mutate: (m: Mutable) => void,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          (e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'host',
        ),
      );
      void fetch(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      }).then(async (up) => {
        const text = await up.text();
        const m: Mutable = {
          path: req.url ?? '/',
          status: up.status,
          body: text === '' ? undefined : (JSON.parse(text) as unknown),
        };
        mutate(m);
        const out = m.body === undefined ? '' : JSON.stringify(m.body);
        res.writeHead(m.status, {
          'content-type': up.headers.get('content-type') ?? 'application/json',
          'x-correlation-id': up.headers.get('x-correlation-id') ?? 'proxy',
          'content-length': Buffer.byteLength(out),
        });
        res.end(out);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}
