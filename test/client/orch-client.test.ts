/**
 * The typed client against a live orchestrator (simulated replicas): stream reconnects lose and
 * repeat nothing, retries wait what the server asked and stop within budget, non-retryable
 * answers are not retried, aborting a run cancels the task, concurrency follows capacity.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import {
  FleetConcurrency,
  OrchClient,
  OrchHttpError,
  OrchStreamError,
  type RetryInfo,
  type TaskEvent,
  type TaskRequest,
} from '../../src/index.js';
import { KEYS, simPool, startHarness, task, TEST_KEYS, type Harness } from '../support/harness.js';

const LIMITED_KEY = 'limited-tenant-key';
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: {
      keys: [
        ...TEST_KEYS,
        { id: 'limited', tenant: 'limited', sha256: sha256Hex(LIMITED_KEY), scopes: ['data'] },
      ],
    },
    fairness: { tenants: [{ id: 'limited', rps: 2, burst: 1 }] },
    pools: [
      simPool('paced', 'vllm', { launch: { worker: 'sim', parallel: 4, sim: { tokens_per_s: 200 } } }),
      simPool('fast', 'vllm', { launch: { worker: 'sim', parallel: 2 } }),
    ],
  });
}, 60_000);
afterAll(() => h.close());

const body = (model: string, extra: Partial<TaskRequest> = {}): TaskRequest =>
  ({ ...task(model, { engine: 'vllm' }), ...extra }) as unknown as TaskRequest;

/**
 * A loopback TCP proxy that cuts the first connection after `cutAfterBytes` bytes of response
 * (mid-stream) and relays later connections untouched.
 */
async function cuttingProxy(
  target: URL,
  cutAfterBytes: number,
): Promise<{ url: string; server: Server; connections: () => number }> {
  let n = 0;
  const server = createServer((client: Socket) => {
    const first = n++ === 0;
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    let relayed = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (first && relayed + chunk.length >= cutAfterBytes) {
        client.write(chunk.subarray(0, Math.max(0, cutAfterBytes - relayed)));
        client.destroy();
        upstream.destroy();
        return;
      }
      relayed += chunk.length;
      client.write(chunk);
    });
    upstream.on('end', () => client.end());
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server, connections: () => n };
}

function checkTranscript(events: TaskEvent[], tokens: number): void {
  expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + (events[0]?.id ?? 0)));
  expect(events[0]?.event).toBe('started');
  expect(events.at(-1)?.event).toBe('end');
  const toks = events.filter((e) => e.event === 'token');
  expect(toks.map((e) => e.data.i)).toEqual([...Array(tokens).keys()]);
}

describe('OrchClient against a live orchestrator', () => {
  it('a stream cut mid-way reconnects with Last-Event-ID: no event lost, none repeated', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice });
    const t = body('paced', { max_tokens: 48 });
    await client.enqueue(t);
    // Cut inside the token events: headers plus a few frames.
    const proxy = await cuttingProxy(new URL(h.url), 900);
    try {
      const viaProxy = new OrchClient({ baseUrl: proxy.url, apiKey: KEYS.alice });
      const events: TaskEvent[] = [];
      for await (const ev of viaProxy.streamTask(t.task_id)) events.push(ev);
      expect(proxy.connections()).toBeGreaterThanOrEqual(2);
      checkTranscript(events, 48);
      // The same transcript read again in full (late reader) matches event for event.
      const again: TaskEvent[] = [];
      for await (const ev of client.streamTask(t.task_id)) again.push(ev);
      expect(again.filter((e) => e.event !== 'metrics')).toEqual(events.filter((e) => e.event !== 'metrics'));
    } finally {
      proxy.server.close();
    }
  });

  it('resumes from a given lastEventId and ends after the terminal event', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice });
    const t = body('fast', { max_tokens: 8 });
    const events: TaskEvent[] = [];
    for await (const ev of client.run(t)) events.push(ev);
    checkTranscript(events, 8);
    const tail: TaskEvent[] = [];
    for await (const ev of client.streamTask(t.task_id, { lastEventId: 3 })) tail.push(ev);
    expect(tail).toEqual(events.filter((e) => e.id > 3));
  });

  it('a stream that keeps failing ends with OrchStreamError after the allowed reconnects', async () => {
    const dead = createServer((s) => s.destroy());
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const client = new OrchClient({
      baseUrl: `http://127.0.0.1:${(dead.address() as { port: number }).port}`,
    });
    const it = client.streamTask(randomUUID(), {
      maxReconnects: 2,
      reconnectDelayMs: 1,
      retry: { maxAttempts: 1 },
    });
    await expect(it.next()).rejects.toBeInstanceOf(OrchStreamError);
    dead.close();
  });

  it('429 rate limit: retried after the server-advised backoff, then admitted', async () => {
    const retries: (RetryInfo & { at: number })[] = [];
    const client = new OrchClient({
      baseUrl: h.url,
      apiKey: LIMITED_KEY,
      onRetry: (info) => retries.push({ ...info, at: performance.now() }),
    });
    const t0 = performance.now();
    await client.enqueue(body('fast'));
    const accepted = await client.enqueue(body('fast'));
    const elapsed = performance.now() - t0;
    expect(accepted.queue_position).toBeGreaterThanOrEqual(0);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    const first = retries[0]!;
    expect(first).toMatchObject({ status: 429, code: 'ADMISSION_REJECT', method: 'POST', path: '/v1/tasks' });
    // The refill at 2 rps is ~500 ms; the client waited at least what the server advised.
    expect(first.delayMs).toBeGreaterThan(100);
    expect(elapsed).toBeGreaterThanOrEqual(retries.reduce((s, r) => s + r.delayMs, 0));
  });

  it('the wait budget bounds retries: a backoff beyond it surfaces the 429 at once', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: LIMITED_KEY, retry: { budgetMs: 10 } });
    await new Promise((r) => setTimeout(r, 600)); // refill one token
    await client.enqueue(body('fast'));
    const t0 = performance.now();
    const err = await client.enqueue(body('fast')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchHttpError);
    expect((err as OrchHttpError).status).toBe(429);
    expect((err as OrchHttpError).retriable).toBe(true);
    expect((err as OrchHttpError).attempts).toBe(1);
    expect(performance.now() - t0).toBeLessThan(400);
  });

  it('non-retryable answers (400, 401, 404, 422) are not retried', async () => {
    const retries: RetryInfo[] = [];
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, onRetry: (i) => retries.push(i) });
    const cases: [() => Promise<unknown>, number, string][] = [
      [() => client.enqueue(body('fast', { ctx: 0 })), 400, 'INVALID_PARAMS'],
      [() => new OrchClient({ baseUrl: h.url }).enqueue(body('fast')), 401, 'UNAUTHORIZED'],
      [() => client.getSession(randomUUID()), 404, 'NOT_FOUND'],
      [() => client.enqueue(body('paced', { max_tokens: 1500, deadline_ms: 1 })), 422, 'DEADLINE_UNMET'],
    ];
    for (const [p, status, code] of cases) {
      const err = (await p().catch((e: unknown) => e)) as OrchHttpError;
      expect(err).toBeInstanceOf(OrchHttpError);
      expect([err.status, err.code, err.attempts, err.retriable]).toEqual([status, code, 1, false]);
      expect(err.correlationId).toMatch(/.+/);
    }
    expect(retries).toEqual([]);
  });

  it('correlation ids: a fixed one is sent and echoed on errors', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, correlationId: 'agent-7.run-42' });
    const err = (await client.cancel(randomUUID()).catch((e: unknown) => e)) as OrchHttpError;
    expect(err.status).toBe(404);
    expect(err.correlationId).toBe('agent-7.run-42');
  });

  it('aborting a run cancels the task on the server; the stream ends canceled', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice });
    const t = body('paced', { max_tokens: 1000 });
    const ac = new AbortController();
    let tokens = 0;
    const err = await (async () => {
      for await (const ev of client.run(t, { signal: ac.signal })) {
        if (ev.event === 'token' && ++tokens === 3) ac.abort(new Error('user gave up'));
      }
    })().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/user gave up/);
    const rest: TaskEvent[] = [];
    for await (const ev of client.streamTask(t.task_id)) rest.push(ev);
    const end = rest.at(-1);
    expect(end?.event).toBe('end');
    expect(end?.event === 'end' && end.data.canceled).toBe(true);
    expect(rest.filter((e) => e.event === 'token').length).toBeLessThan(1000);
  });

  it('every control-plane read works through the client', async () => {
    const ops = new OrchClient({ baseUrl: h.url, apiKey: KEYS.ops });
    expect((await ops.capabilities()).api_version).toBe('1.1.0');
    expect((await ops.poolHealth('fast')).ready).toBe(true);
    expect((await ops.listCatalogModels()).models).toBeInstanceOf(Array);
    const ref = await ops.createArtifact({ kind: 'plan', content: { steps: [1, 2] } });
    expect((await ops.getArtifact(ref.id)).digest).toBe(ref.digest);
    expect((await ops.listArtifacts({ limit: 5 })).artifacts.length).toBeGreaterThan(0);
    expect(await ops.metrics()).toContain('tasks_enqueued_total');
    const forbidden = (await new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice })
      .replicaSets()
      .catch((e: unknown) => e)) as OrchHttpError;
    expect(forbidden.status).toBe(403);
  });
});

describe('FleetConcurrency', () => {
  it('starts from replica-set capacity and the client share', async () => {
    const ops = new OrchClient({ baseUrl: h.url, apiKey: KEYS.ops });
    const all = await FleetConcurrency.fromFleet(ops);
    const sets = (await ops.replicaSets()).replica_sets;
    const slots = sets.reduce((s, r) => s + (r.slots_total ?? 0), 0);
    expect(all.limit).toBe(slots * 2);
    expect((await FleetConcurrency.fromFleet(ops, { share: 0.25, modelId: 'paced' })).limit).toBe(2);
  });

  it('halves on 429 and pauses for the backoff; grows back one per window of successes', async () => {
    const fc = new FleetConcurrency(8);
    let peak = 0;
    const work = (): Promise<void> =>
      fc.run(async () => {
        peak = Math.max(peak, fc.inFlight);
        await new Promise((r) => setTimeout(r, 5));
      });
    await Promise.all(Array.from({ length: 32 }, work));
    expect(peak).toBe(8);
    const t0 = Date.now();
    fc.onBackpressure(100);
    expect(fc.limit).toBe(4);
    await work();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    peak = 0;
    // Four run at once, then one more slot per window of successes (4, 5, 6 …): never back at 8.
    await Promise.all(Array.from({ length: 12 }, work));
    expect(peak).toBeGreaterThanOrEqual(4);
    expect(peak).toBeLessThanOrEqual(6);
    for (let i = 0; i < 40; i++) await work();
    expect(fc.limit).toBe(8);
  });

  it('under real 429s many agents converge to a limit the tenant quota admits', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: LIMITED_KEY, retry: { maxAttempts: 1 } });
    const fc = new FleetConcurrency(8);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, () =>
        fc
          .run(() => client.enqueue(body('fast')))
          .then(
            () => 'ok',
            (e: OrchHttpError) => e.code,
          ),
      ),
    );
    expect(outcomes).toContain('ADMISSION_REJECT');
    expect(fc.limit).toBeLessThan(8);
  });
});
