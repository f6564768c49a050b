/**
 * Structured logs (SPEC §12) and secret hygiene (SPEC §11): one JSON line per admission
 * decision, dispatch, completion, cancel, eviction, preemption and restart, carrying the §12
 * fields and the request's correlation id; API keys, auth headers and configured secret
 * patterns never reach a log line or an error body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchClient, OrchHttpError, type TaskRequest } from '../../src/index.js';
import { KEYS, simPool, startHarness, task, TEST_KEYS, until, type Harness } from '../support/harness.js';

const SECRET = 'corp-secret-0123456789ab';
const BEARER_LIKE = 'sk-live-ABCDEFGHIJKLMNOPQRSTUV';
let h: Harness;
let lines: Record<string, unknown>[];
const bodies: string[] = [];

const req = (model: string, extra: Record<string, unknown> = {}): TaskRequest =>
  task(model, { engine: 'vllm', ...extra }) as unknown as TaskRequest;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    logging: { redact_patterns: ['Bearer\\s+\\S+', 'sk-[A-Za-z0-9_-]{16,}', 'corp-secret-[0-9a-f]{12}'] },
    pools: [
      simPool('logs', 'vllm'),
      simPool('shed', 'vllm', {
        queue: { capacity: 1, full_policy: 'shed-low-priority' },
        launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } },
      }),
      simPool('crash', 'vllm', {
        launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 50 }, health_interval_ms: 100 },
      }),
    ],
  });
  const alice = new OrchClient({
    baseUrl: h.url,
    apiKey: KEYS.alice,
    correlationId: 'corr-complete',
    retry: { maxAttempts: 1 },
  });
  // Accepted, dispatched, completed — the prompt carries a secret that must not leak anywhere.
  for await (const _ of alice.run(req('logs', { prompt: `remember ${SECRET} and ${BEARER_LIKE}` })));
  // A cancel.
  const c = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, correlationId: 'corr-cancel' });
  const running = req('shed', { priority: 'batch', max_tokens: 400 });
  await c.enqueue(running);
  for await (const ev of c.streamTask(running.task_id)) if (ev.event === 'token') break;
  // An eviction that is a (soft) preemption: interactive work sheds queued batch work.
  const queued = req('shed', { priority: 'batch', max_tokens: 50 });
  await new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, correlationId: 'corr-shed-victim' }).enqueue(
    queued,
  );
  const urgent = req('shed', { max_tokens: 5 });
  await new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, correlationId: 'corr-urgent' }).enqueue(urgent);
  await c.cancel(running.task_id);
  // Rejections whose messages could echo secrets: an unknown model named like a key, a bad key.
  const refusals = [
    alice.enqueue(req(`model-${SECRET}`)),
    new OrchClient({ baseUrl: h.url, apiKey: BEARER_LIKE }).enqueue(req('logs')),
    fetch(`${h.url}/v1/${SECRET}`, { headers: { authorization: `Bearer ${KEYS.alice}` } }).then(async (r) => {
      bodies.push(await r.text());
    }),
  ];
  for (const r of refusals)
    await r.catch((e: unknown) => {
      if (e instanceof OrchHttpError) bodies.push(JSON.stringify(e.envelope));
    });
  // A restart: the engine process dies and the supervisor brings it back.
  const crash = h.running.orchestrator.pools.find((p) => p.id === 'crash')!;
  await fetch(`${crash.supervisor.replicas()[0]!.adapter.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ crash: 3 }),
  });
  await alice.enqueue(req('crash', { max_tokens: 50 })).catch(() => undefined);
  await until(() => h.logs.lines.some((l) => l.includes('replica.restart_scheduled')), 90_000);
  lines = h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}, 60_000);
afterAll(() => h.close());

const find = (event: string, pred: (l: Record<string, unknown>) => boolean = () => true) =>
  lines.filter((l) => l['event'] === event && pred(l));

describe('structured logs (SPEC §12)', () => {
  it('every line is one JSON object with a level, time and event or message', () => {
    for (const raw of h.logs.lines) expect(() => JSON.parse(raw) as unknown).not.toThrow();
    for (const l of lines) {
      expect(typeof l['level']).toBe('number');
      expect(typeof l['time']).toBe('string');
    }
  });

  it('one line per admission, dispatch and completion, with the §12 fields and the correlation id', () => {
    const fields = [
      'job_id',
      'session_id',
      'tenant_id',
      'engine',
      'pool_id',
      'model_id',
      'ctx',
      'engine_version',
      'sampler_profile_version',
      'kv_warmth',
      'priority',
      'weight',
      'deadline_ms',
      'preempted',
      'tokens_in',
      'tokens_out',
    ];
    const accepted = find(
      'admission.accepted',
      (l) => l['correlation_id'] === 'corr-complete' && l['pool_id'] === 'logs',
    );
    expect(accepted).toHaveLength(1);
    for (const f of [...fields, 'queue_position', 'on_time_probability'])
      expect(accepted[0], f).toHaveProperty(f);
    const jobId = accepted[0]!['job_id'];
    const dispatched = find('task.dispatched', (l) => l['job_id'] === jobId);
    expect(dispatched).toHaveLength(1);
    expect(dispatched[0]).toMatchObject({
      correlation_id: 'corr-complete',
      queue_time_ms: expect.any(Number),
    });
    expect(dispatched[0]).toHaveProperty('replica_id');
    const done = find('task.completed', (l) => l['job_id'] === jobId);
    expect(done).toHaveLength(1);
    for (const f of [...fields, 'replica_id', 'queue_time_ms', 'decode_time_ms'])
      expect(done[0], f).toHaveProperty(f);
    expect(done[0]!['tokens_out']).toBeGreaterThan(0);
  });

  it('cancel, eviction (soft preemption), rejection and restart each log one line', () => {
    expect(find('task.canceled', (l) => l['correlation_id'] === 'corr-cancel')).toHaveLength(1);
    const evicted = find('task.evicted', (l) => l['correlation_id'] === 'corr-shed-victim');
    expect(evicted).toHaveLength(1);
    expect(evicted[0]).toMatchObject({ preempted: true, code: 'QUEUE_FULL_DROP_LRU' });
    const rejected = find('admission.rejected');
    expect(rejected.map((l) => l['code'])).toEqual(
      expect.arrayContaining(['INVALID_PARAMS', 'UNAUTHORIZED']),
    );
    for (const l of rejected) expect(l).toHaveProperty('correlation_id');
    expect(find('replica.restart_scheduled', (l) => l['pool_id'] === 'crash').length).toBeGreaterThanOrEqual(
      1,
    );
  });
});

describe('secrets never reach logs or error bodies (SPEC §11)', () => {
  it('API keys, bearer tokens and configured patterns are absent from every log line', () => {
    const all = h.logs.lines.join('\n');
    for (const secret of [KEYS.alice, KEYS.ops, SECRET, BEARER_LIKE]) expect(all).not.toContain(secret);
    expect(all).toContain('[redacted]');
  });

  it('error bodies do not echo them either', () => {
    expect(bodies.length).toBe(3);
    for (const b of bodies)
      for (const secret of [KEYS.alice, SECRET, BEARER_LIKE]) expect(b).not.toContain(secret);
    expect(bodies.some((b) => b.includes('[redacted]'))).toBe(true);
  });
});
