/**
 * Host tools for policy plugins (SPEC §10) through the public API: a plugin built with the SDK
 * (sdk/fixtures/tool-request) asks for a fetch in its admission decision, the host runs it
 * through the tool proxy under the granted tenant's policy against a loopback upstream the test
 * policy explicitly allows, and later decisions — visible as `POST /v1/tasks` answers — depend
 * on the result that the snapshots then carry.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig } from '../../src/config/schema.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { buildPlugin } from '../../src/plugins/plugin-build.js';
import { resolvePlugins } from '../../src/plugins/plugin-config.js';
import { type AdmissionQuery, type PlacementCandidate, PluginHost } from '../../src/plugins/plugin-host.js';
import { pluginContract } from '../../src/plugins/plugin-loader.js';
import { HOOK_NUMBERS } from '../../src/plugins/plugin-runtime.js';
import type { PluginToolProxy } from '../../src/plugins/plugin-tools.js';
import { PluginWorker } from '../../src/plugins/plugin-worker.js';
import { wasmApi } from '../../src/plugins/wasm-api.js';
import { listenOnLoopback } from '../tools/upstream.js';
import { resolveToolsConfig } from '../../src/tools/tools-config.js';
import type { ToolFetchResult, ToolSearchResult } from '../../src/tools/tool-proxy.js';
import { createLogger } from '../../src/util/logger.js';
import {
  call,
  KEYS,
  simPool,
  startHarness,
  task,
  TEST_KEYS,
  until,
  type Harness,
} from '../support/harness.js';

interface Upstream {
  readonly port: number;
  readonly base: string;
  /** Requests seen per path. */
  readonly hits: Map<string, number>;
  /** Lets `/holidays` answer: until then it holds every request. */
  open(): void;
  close(): Promise<void>;
}

/** The web a plugin asks about: `/holidays` answers that today is a holiday. */
async function startUpstream(): Promise<Upstream> {
  const hits = new Map<string, number>();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === '/holidays') {
      void gate.then(() => {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('today: closed (national holiday)');
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('unknown');
  });
  const { port, base } = await listenOnLoopback(server);
  return {
    port,
    base,
    hits,
    open,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let up: Upstream;
let wasm: string;
beforeAll(async () => {
  up = await startUpstream();
  const out = join(await mkdtemp(join(tmpdir(), 'llorch-plugin-tools-')), 'tool-request.wasm');
  wasm = (await buildPlugin('sdk/fixtures/tool-request', { out })).path;
}, 120_000);
afterAll(async () => up?.close());

/** The tool policy of the plugin's tenant: the loopback upstream is allowed here, and only here. */
function toolsConfig(): NonNullable<RawConfig['tools']> {
  return {
    timeout_ms: 5_000,
    deny_domains: ['.blocked.localhost'],
    search: { provider: 'searxng', url: up.base },
    tenants: [{ id: 'policy-bot', enabled: true, allow_private: true }],
  };
}

type RawPlugin = NonNullable<RawConfig['plugins']>[number];

function pluginConfig(
  params: Record<string, unknown>,
  tools: NonNullable<RawPlugin['tools']> = { tenant: 'policy-bot', allow: ['fetch'] },
): RawPlugin {
  return { id: 'tool-request', path: wasm, hooks: ['admission'], budget_ms: 200, params, tools };
}

const lines = (h: Harness) => h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
const audit = (h: Harness) => lines(h).filter((l) => l['event'] === 'tool.call');
const submit = (h: Harness) => call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') });

describe('a plugin granted fetch', () => {
  let h: Harness;
  let closed = false;
  beforeAll(async () => {
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [simPool('p0', 'llamacpp')],
      tools: toolsConfig(),
      plugins: [pluginConfig({ id: 'holidays', url: `${up.base}/holidays`, closed_marker: 'closed' })],
    });
  }, 60_000);
  afterAll(async () => {
    if (!closed) await h?.close();
  });

  it('decides at once without the result, and by the result once it is in', async () => {
    const first = task('p0');
    // The upstream holds its answer: a decision that waited for the tool would never come.
    const r1 = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: first });
    // No result yet: the plugin's default, with the fetch asked for on the side.
    expect(r1.status).toBe(202);
    expect(audit(h)).toEqual([]);
    await until(() => up.hits.get('/holidays') === 1);
    up.open();
    await until(() => audit(h).length > 0);
    const r2 = await submit(h);
    expect(r2.status).toBe(429);
    expect(r2.json).toMatchObject({
      code: 'ADMISSION_REJECT',
      message: "plugin 'tool-request': closed today (fetch 200)",
    });
    expect(up.hits.get('/holidays')).toBe(1);
    // The audit line names the plugin, its request and the tenant whose policy applied.
    expect(audit(h)).toEqual([
      expect.objectContaining({
        tool: 'fetch',
        tenant: 'policy-bot',
        plugin: 'tool-request',
        tool_id: 'holidays',
        url: `${up.base}/holidays`,
        decision: 'allowed',
        status: 200,
        correlation_id: first.task_id,
      }),
    ]);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toMatch(/tool_calls_total\{tool="fetch",tenant="policy-bot",decision="allowed"\} 1/);
  });

  it('runs a request once while its result is fresh, however many decisions ask again', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => submit(h)));
    expect(answers.map((a) => a.status)).toEqual([429, 429, 429, 429, 429, 429]);
    // Closing waits for every tool call in flight: none can arrive after this point.
    await h.close();
    closed = true;
    expect(up.hits.get('/holidays')).toBe(1);
    expect(audit(h)).toHaveLength(1);
  });
});

describe('a plugin asking for a denied host', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [simPool('p0', 'llamacpp')],
      tools: toolsConfig(),
      plugins: [pluginConfig({ id: 'calendar', url: `http://cal.blocked.localhost:${up.port}/holidays` })],
    });
  }, 60_000);
  afterAll(async () => h?.close());

  it('gets the typed refusal as its result, in the next snapshot', async () => {
    expect((await submit(h)).status).toBe(202);
    await until(() => audit(h).length > 0);
    const r = await submit(h);
    expect(r.status).toBe(429);
    expect((r.json as { message: string }).message).toMatch(
      /^plugin 'tool-request': tool calendar failed: FORBIDDEN denied: .*tools\.deny_domains entry '\.blocked\.localhost'/,
    );
    expect(audit(h)).toEqual([
      expect.objectContaining({ plugin: 'tool-request', tenant: 'policy-bot', decision: 'denied' }),
    ]);
  });
});

describe('a plugin asking for a tool it is not granted', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      pools: [simPool('p0', 'llamacpp')],
      tools: toolsConfig(),
      plugins: [
        pluginConfig(
          { id: 'holidays', url: `${up.base}/holidays` },
          { tenant: 'policy-bot', allow: ['search'] },
        ),
      ],
    });
  }, 60_000);
  afterAll(async () => h?.close());

  it('falls back to the built-in policy with the reason logged, and nothing is fetched', async () => {
    const hitsBefore = up.hits.get('/holidays') ?? 0;
    expect((await submit(h)).status).toBe(202);
    const fallback = lines(h).find((l) => l['event'] === 'plugin.fallback');
    expect(fallback).toMatchObject({ plugin: 'tool-request', hook: 'admission', reason: 'malformed' });
    expect(fallback?.['msg']).toContain(
      "tools: 'fetch' is not granted to plugin 'tool-request' (plugins[].tools.allow: search)",
    );
    await h.close();
    expect(audit(h)).toEqual([]);
    expect(up.hits.get('/holidays') ?? 0).toBe(hitsBefore);
  });
});

describe('plugins[].tools in the configuration', () => {
  const base = (tools: Record<string, unknown>, over: Partial<RawConfig> = {}) => ({
    profile: 'dev',
    pools: [simPool('p0', 'llamacpp')],
    tools: { tenants: [{ id: 'on', enabled: true }, { id: 'off' }] },
    plugins: [{ id: 'x', path: '/nonexistent.wasm', hooks: ['admission'], tools }],
    ...over,
  });
  const problems = (doc: unknown): readonly string[] => {
    try {
      validateConfig(doc);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('accepts a grant to a tenant with an enabled tool policy, defaults applied', () => {
    const { config } = validateConfig(base({ tenant: 'on', allow: ['fetch'] }));
    expect(config.plugins[0]?.tools).toEqual({
      tenant: 'on',
      allow: ['fetch'],
      maxPerMinute: undefined,
      ttlMs: 300_000,
    });
  });

  it.each([
    [{ tenant: 'nobody', allow: ['fetch'] }, "plugins[0].tools.tenant: tenant 'nobody' has no tool policy"],
    [
      { tenant: 'off', allow: ['fetch'] },
      "plugins[0].tools.tenant: the tool proxy is disabled for tenant 'off'",
    ],
    [{ tenant: 'on', allow: ['search'] }, "plugins[0].tools.allow: 'search' needs a search provider"],
    [{ tenant: 'on', allow: ['exec'] }, 'plugins[0].tools.allow[0]: must be one of fetch, search'],
    [{ tenant: 'on', allow: [] }, 'plugins[0].tools.allow: must NOT have fewer than 1 items'],
  ])('refuses %j naming the field', (tools, expected) => {
    expect(problems(base(tools)).join('\n')).toContain(expected);
  });
});

/** A tool proxy whose calls the test answers: every call is counted the moment it is made. */
class HeldProxy implements PluginToolProxy {
  readonly calls: { tool: string; tenant: string; body: unknown; audit: unknown; answer: () => void }[] = [];
  fetch(tenant: string, body: unknown, _c: string, audit?: Readonly<Record<string, string>>) {
    return new Promise<ToolFetchResult>((resolve) => {
      const url = (body as { url: string }).url;
      this.calls.push({
        tool: 'fetch',
        tenant,
        body,
        audit,
        answer: () =>
          resolve({
            url,
            status: 200,
            headers: {},
            content_type: 'text/plain',
            encoding: 'utf8',
            body: 'p0-r1\n',
            bytes: 6,
            truncated: false,
            redirects: 0,
          }),
      });
    });
  }
  search(tenant: string, body: unknown, _c: string, audit?: Readonly<Record<string, string>>) {
    return new Promise<ToolSearchResult>((resolve) => {
      const query = (body as { query: string }).query;
      this.calls.push({
        tool: 'search',
        tenant,
        body,
        audit,
        answer: () =>
          resolve({
            query,
            results: [{ title: 'closed on Monday', url: 'https://x.example/', snippet: '' }],
          }),
      });
    });
  }
}

describe('the plugin host with a tool grant', () => {
  const hosts: PluginHost[] = [];
  const proxies: HeldProxy[] = [];
  afterAll(async () => {
    // Closing waits for the calls in flight: answer whatever is left.
    for (const p of proxies) for (const c of p.calls) c.answer();
    await Promise.all(hosts.map((h) => h.close()));
  });
  let clock = Date.UTC(2026, 0, 5, 12);

  async function load(raw: Partial<RawPlugin>, proxy: HeldProxy) {
    const problems: string[] = [];
    const tools = resolveToolsConfig(
      {
        search: { provider: 'searxng', url: 'https://search.example' },
        tenants: [{ id: 'policy-bot', enabled: true }],
      },
      problems,
    );
    const plugins = resolvePlugins([{ ...pluginConfig({}), ...raw }], (p) => p, problems, tools);
    expect(problems).toEqual([]);
    proxies.push(proxy);
    const host = await PluginHost.load({
      plugins,
      metrics: new OrchMetrics({ processMetrics: false }),
      logger: createLogger({ level: 'silent' }),
      tools: proxy,
      now: () => clock,
    });
    hosts.push(host);
    return host;
  }

  const taskOf = (taskId: string): AdmissionQuery['task'] => ({
    taskId,
    sessionId: 's',
    workload: 'completion',
    modelRef: 'p0',
    engine: 'llamacpp',
    priority: 'interactive',
    promptTokens: 4,
    maxTokens: 8,
    expectedTokens: undefined,
    deadlineMs: 60_000,
  });
  const admission = (host: PluginHost, taskId: string) =>
    host.admission({
      nowMs: clock,
      tenant: 'alice',
      task: taskOf(taskId),
      pool: { id: 'p0', engine: 'llamacpp', queueDepth: 0, queueCapacity: 8 },
    });
  const refused = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (err: Error) => err.message,
    );

  it('runs a request once while it is in flight, then again only after ttl_ms', async () => {
    const proxy = new HeldProxy();
    const host = await load(
      {
        params: { id: 'h', url: 'https://cal.example/today' },
        tools: { tenant: 'policy-bot', allow: ['fetch'], ttl_ms: 1_000 },
      },
      proxy,
    );
    for (let i = 0; i < 5; i++) expect(await refused(admission(host, `t${i}`))).toBe('accepted');
    expect(proxy.calls).toHaveLength(1);
    expect(proxy.calls[0]).toMatchObject({
      tool: 'fetch',
      tenant: 'policy-bot',
      body: { url: 'https://cal.example/today' },
      audit: { plugin: 'tool-request', tool_id: 'h' },
    });
    proxy.calls[0]!.answer();
    // The body has no 'closed': accepted on the result, and no new call while it is fresh.
    await until(
      async () => (await refused(admission(host, 'fresh'))) === 'accepted' && proxy.calls.length === 1,
    );
    clock += 999;
    await admission(host, 'still-fresh');
    expect(proxy.calls).toHaveLength(1);
    clock += 1;
    await admission(host, 'expired');
    expect(proxy.calls).toHaveLength(2);
    proxy.calls[1]!.answer();
  });

  it('turns requests over max_per_minute into rate_limited error results', async () => {
    const proxy = new HeldProxy();
    const host = await load(
      {
        params: { id: 'h', url: 'https://cal.example/today' },
        tools: { tenant: 'policy-bot', allow: ['fetch'], ttl_ms: 10, max_per_minute: 1 },
      },
      proxy,
    );
    await admission(host, 'a');
    proxy.calls[0]!.answer();
    await until(async () => (await refused(admission(host, 'b'))) === 'accepted');
    clock += 10; // expired: asked again, over the plugin's minute
    await admission(host, 'c');
    expect(proxy.calls).toHaveLength(1);
    expect(await refused(admission(host, 'd'))).toMatch(
      /^plugin 'tool-request': tool h failed: ADMISSION_REJECT rate_limited: plugin 'tool-request' made 1 tool calls in the last minute/,
    );
  });

  it('searches for a plugin granted search: the SDK encodes the request and reads the results', async () => {
    const proxy = new HeldProxy();
    const host = await load(
      {
        params: { id: 'q', tool: 'search', query: 'holidays today', closed_marker: 'closed' },
        tools: { tenant: 'policy-bot', allow: ['search'] },
      },
      proxy,
    );
    expect(await refused(admission(host, 's1'))).toBe('accepted');
    expect(proxy.calls).toEqual([
      expect.objectContaining({ tool: 'search', body: { query: 'holidays today' } }),
    ]);
    proxy.calls[0]!.answer();
    await until(async () => (await refused(admission(host, 's2'))) !== 'accepted');
    expect(await refused(admission(host, 's3'))).toBe("plugin 'tool-request': closed today (search 0)");
  });

  it('passes results to placement too, and runs placement decisions’ requests', async () => {
    const proxy = new HeldProxy();
    const host = await load(
      { hooks: ['placement'], params: { id: 'zone', url: 'https://cal.example/zone' } },
      proxy,
    );
    const replica = (id: string): PlacementCandidate => ({
      id,
      poolId: 'p0',
      host: 'local',
      ready: true,
      slotsTotal: 1,
      inFlight: 0,
      queueDepth: 0,
      devices: [],
      topologyCost: 0,
      session: false,
    });
    const q = (taskId: string) => ({
      nowMs: clock,
      tenant: 'alice',
      task: taskOf(taskId),
      replicas: [replica('p0-r0'), replica('p0-r1')],
    });
    expect(await host.placement(q('p1'))).toBeUndefined();
    expect(proxy.calls).toHaveLength(1);
    proxy.calls[0]!.answer();
    await until(async () => (await host.placement(q('p2'))) !== undefined);
    expect(await host.placement(q('p3'))).toEqual({ plugin: 'tool-request', allow: ['p0-r1'] });
    expect(proxy.calls).toHaveLength(1);
  });

  it('refuses to load a grant without a tool proxy', async () => {
    const problems: string[] = [];
    const tools = resolveToolsConfig({ tenants: [{ id: 'policy-bot', enabled: true }] }, problems);
    const plugins = resolvePlugins([pluginConfig({})], (p) => p, problems, tools);
    await expect(
      PluginHost.load({
        plugins,
        metrics: new OrchMetrics({ processMetrics: false }),
        logger: createLogger({ level: 'silent' }),
      }),
    ).rejects.toThrow('plugins[0].tools: no tool proxy runs in this process');
  });
});

describe('the SDK against the tool contracts', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const contract = {
    admissionSnapshot: ajv.compile(pluginContract('admission-snapshot.schema.json')),
    admissionDecision: ajv.compile(pluginContract('admission-decision.schema.json')),
    placementSnapshot: ajv.compile(pluginContract('placement-snapshot.schema.json')),
    placementDecision: ajv.compile(pluginContract('placement-decision.schema.json')),
  };
  const workers: PluginWorker[] = [];
  afterAll(async () => Promise.all(workers.map((w) => w.terminate())));
  async function decide(hook: 'admission' | 'placement', snapshot: unknown): Promise<unknown> {
    const w = await PluginWorker.start(
      await wasmApi.compile(new Uint8Array(await readFile(wasm))),
      'tool-request',
    );
    workers.push(w);
    const r = await w.call(HOOK_NUMBERS[hook], JSON.stringify(snapshot), 10_000);
    if (r.kind !== 'result') throw new Error(`call ended: ${JSON.stringify(r)}`);
    return JSON.parse(r.output) as unknown;
  }
  const task0 = {
    task_id: 't',
    session_id: 's',
    workload: 'completion',
    model_ref: 'm',
    engine: 'llamacpp',
    priority: 'batch',
    prompt_tokens: 1,
    max_tokens: 2,
    deadline_ms: 1000,
  };
  const admissionSnapshot = (params: Record<string, unknown>, tools: Record<string, unknown>) => ({
    abi: 1,
    hook: 'admission',
    now_ms: 1_000,
    plugin: { id: 'tool-request', version: '1.0.0' },
    params,
    task: task0,
    tenant: { id: 'acme', tokens_last_minute: 0, tasks_last_minute: 0 },
    pool: { id: 'p0', engine: 'llamacpp', queue_depth: 0, queue_capacity: 8 },
    bounds: { priorities: ['interactive', 'batch'], weight_min: 0.5, weight_max: 2 },
    tools,
  });

  it.each([
    [
      { id: 'a', url: 'https://x.example/"q"' },
      {},
      { decision: 'accept', tools: [{ id: 'a', tool: 'fetch', url: 'https://x.example/"q"' }] },
    ],
    [
      { id: 'b', tool: 'search', query: 'ü "x"' },
      {},
      { decision: 'accept', tools: [{ id: 'b', tool: 'search', query: 'ü "x"' }] },
    ],
    [
      { id: 'c', url: 'https://x.example/' },
      {
        c: {
          tool: 'fetch',
          at_ms: 900,
          error: { code: 'UPSTREAM_TIMEOUT', reason: 'timeout', message: 'slow' },
        },
      },
      {
        decision: 'refuse',
        code: 'ADMISSION_REJECT',
        message: 'tool c failed: UPSTREAM_TIMEOUT timeout: slow',
        retry_after_ms: 60000,
        tools: [{ id: 'c', tool: 'fetch', url: 'https://x.example/' }],
      },
    ],
  ])(
    'admission with params %j and results %j decides %j, valid against the contracts',
    async (params, tools, expected) => {
      const snapshot = admissionSnapshot(params, tools);
      const snapshotValid = contract.admissionSnapshot;
      expect(snapshotValid(snapshot), JSON.stringify(snapshotValid.errors)).toBe(true);
      const decision = await decide('admission', snapshot);
      expect(decision).toEqual(expected);
      const valid = contract.admissionDecision;
      expect(valid(decision), JSON.stringify(valid.errors)).toBe(true);
    },
  );

  it('placement reads a fetch result and asks again, valid against the contracts', async () => {
    const snapshot = {
      abi: 1,
      hook: 'placement',
      now_ms: 1_000,
      plugin: { id: 'tool-request', version: '1.0.0' },
      params: { id: 'zone', url: 'https://x.example/zone' },
      task: task0,
      tenant: { id: 'acme' },
      replicas: [
        {
          id: 'p0-r1',
          pool_id: 'p0',
          host: 'local',
          ready: true,
          slots_total: 1,
          in_flight: 0,
          queue_depth: 0,
          devices: [],
          topology_cost: 0,
          session: false,
        },
      ],
      tools: {
        zone: {
          tool: 'fetch',
          at_ms: 900,
          status: 200,
          url: 'https://x.example/zone',
          content_type: 'text/plain',
          encoding: 'utf8',
          body: ' p0-r1\n',
          truncated: false,
        },
      },
    };
    const snapshotValid = contract.placementSnapshot;
    expect(snapshotValid(snapshot), JSON.stringify(snapshotValid.errors)).toBe(true);
    const decision = await decide('placement', snapshot);
    expect(decision).toEqual({
      decision: 'place',
      allow: ['p0-r1'],
      tools: [{ id: 'zone', tool: 'fetch', url: 'https://x.example/zone' }],
    });
    const valid = contract.placementDecision;
    expect(valid(decision), JSON.stringify(valid.errors)).toBe(true);
  });
});
