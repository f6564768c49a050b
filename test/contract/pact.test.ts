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
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import { OrchClient } from '../../src/index.js';
import { simPool, startHarness, type Harness } from '../support/harness.js';
import { writeFixture } from '../plugins/wat-fixtures.js';
import { documentedPairs, isNodePath, readPact, uncovered, undocumented } from './coverage.js';
import { INTERACTIONS, PACT_DIR, PACT_KEYS, UNKNOWN_KEY, type Clients } from './interactions.js';
import { verifyInteraction, verifyProvider } from './pact-runner.js';
import { startUpstream, type Upstream } from '../tools/upstream.js';

process.env['PACT_DO_NOT_TRACK'] = 'true';
const PACTS = join(process.cwd(), 'contracts', 'pacts');
const PACT_FILE = join(PACTS, 'llorch-client-llama-orch.json');

function clients(url: string, dispatcher: Agent): Clients {
  const make = (apiKey?: string) =>
    new OrchClient({ baseUrl: url, apiKey, retry: { maxAttempts: 1 }, dispatcher });
  return {
    alice: make(PACT_KEYS.alice),
    ops: make(PACT_KEYS.ops),
    limited: make(PACT_KEYS.limited),
    scraper: make(PACT_KEYS.scraper),
    poolOps: make(PACT_KEYS.poolOps),
    unknown: make(UNKNOWN_KEY),
    anonymous: make(),
  };
}

describe('consumer: the typed client against the Pact mock', () => {
  beforeAll(async () => {
    await mkdir(PACTS, { recursive: true });
    await rm(PACT_FILE, { force: true });
  });

  for (const i of INTERACTIONS)
    it(i.description, () => verifyInteraction('llorch-client', PACTS, i, clients));

  it('covers every (operation, status) pair of both OpenAPI documents but the node endpoints', async () => {
    const pact = await readPact(PACT_FILE);
    const pairs = documentedPairs().filter((p) => !isNodePath(p.path));
    // Read from the documents: a status added there without an interaction fails here.
    expect(pairs.length).toBeGreaterThan(100);
    expect(uncovered(pairs, pact)).toEqual([]);
    // And no interaction shows an answer the documents do not declare.
    expect(undocumented(documentedPairs(), pact)).toEqual([]);
  });
});

describe('provider: a real orchestrator honours every interaction', () => {
  let h: Harness;
  let upstream: Upstream;
  beforeAll(async () => {
    await mkdir(PACT_DIR, { recursive: true });
    upstream = await startUpstream();
    await writeFile(join(PACT_DIR, 'reload-a.bin'), 'a');
    const pluginPath = await writeFixture('pact-plugin', {});
    const key = (id: string, raw: string, scope: 'data' | 'control' | 'metrics', pools?: string[]) => ({
      id,
      tenant: id,
      sha256: sha256Hex(raw),
      scopes: [scope],
      ...(pools === undefined ? {} : { pools }),
    });
    h = await startHarness({
      testing: { provider_states: true },
      auth: {
        keys: [
          key('alice', PACT_KEYS.alice, 'data'),
          key('ops', PACT_KEYS.ops, 'control'),
          key('limited', PACT_KEYS.limited, 'data'),
          key('scraper', PACT_KEYS.scraper, 'metrics'),
          key('pool-ops', PACT_KEYS.poolOps, 'control', ['pact-drain']),
        ],
      },
      // The scrape needs a `metrics` key: its 401 and 403 are part of the contract.
      metrics: { require_key: true },
      limits: { body_limit_bytes: 16_384 },
      // Small enough that a 64-token task drops early events (the 410 interaction), large enough
      // for the streams replayed in full.
      sse: { max_events_per_task: 16 },
      storage: { max_artifact_bytes: 4096 },
      // One pool-managerd node, for the node list (it registers through a provider state).
      nodes: [{ id: 'pact-node', sha256: sha256Hex('pact-node-credential') }],
      fairness: { tenants: [{ id: 'limited', rps: 0.001, burst: 1 }] },
      catalog: { trust_policy: 'permissive' },
      // One accepting plugin, for the reload interactions (a generous budget: it must never fall back).
      plugins: [{ id: 'pact-plugin', path: pluginPath, hooks: ['admission'], budget_ms: 1000 }],
      // The tool proxy fetches this provider's own test pages and searches a loopback stand-in.
      tools: {
        enabled: true,
        allow_private: true,
        allow_ip_literals: true,
        deny_domains: ['denied.example'],
        timeout_ms: 1_000,
        rate_per_s: 100,
        burst: 100,
        search: { provider: 'template', url: `http://127.0.0.1:${upstream.port}/search?q={query}` },
        tenants: [{ id: 'limited', rate_per_s: 0.001, burst: 1 }],
      },
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
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  it('verifies the committed pact file', async () => {
    await verifyProvider(PACT_FILE, h.url);
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
      verifyProvider(file, proxy, { orchestratorUrl: h.url, logLevel: 'error' }).then(
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
