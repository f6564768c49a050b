/**
 * Admission as one sequence (SPEC §2.1, §17), in process: each step's refusal, the order of the
 * steps, undo of what a refused request charged, and the regressions the review reproduced.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OrchError } from '../../src/errors/orch-error.js';
import type { SubmitInput } from '../../src/domain/submit.js';
import type { EmbedResult } from '../../src/engines/adapter.js';
import { TOKENIZE_CONCURRENCY, predictFor } from '../../src/orchestrator/admission.js';
import { closeCores, core, eventTypes, input, settle, tenant } from '../support/core.js';
import { FrozenTokenizerAdapter, StepAdapter } from '../support/fake-pool.js';

afterEach(closeCores);

const A = tenant('alice');
const B = tenant('bob');

async function refusal(p: Promise<unknown>): Promise<OrchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof OrchError)) throw new Error(`expected an OrchError, got ${String(err)}`);
  return err;
}

describe('admission steps', () => {
  it('step 3: unknown model, wrong engine, missing prompt → INVALID_PARAMS naming the field', async () => {
    const { orch } = core();
    expect((await refusal(orch.submit(A, input({ modelRef: 'nope' }), 'c'))).message).toMatch(/^model_ref/);
    expect((await refusal(orch.submit(A, input({ engine: 'vllm' }), 'c'))).message).toMatch(/^engine/);
    expect((await refusal(orch.submit(A, input({ prompt: undefined }), 'c'))).message).toMatch(/^prompt/);
  });

  it('step 3: a Deprecated model takes no new sessions, keeps existing ones, and admits overrides', async () => {
    let state = 'Active';
    const { orch, adapter } = core({
      top: { catalog: { override_tenants: ['bob'] } },
      extra: { modelState: () => state },
    });
    const first = input();
    await orch.submit(A, first, 'c');
    state = 'Deprecated';
    expect((await refusal(orch.submit(A, input(), 'c'))).code).toBe('MODEL_DEPRECATED');
    await orch.submit(A, input({ sessionId: first.sessionId }), 'c');
    await orch.submit(B, input({ override: true }), 'c');
    // Another tenant's use of the id is a new session: refused.
    expect((await refusal(orch.submit(B, input({ sessionId: first.sessionId }), 'c'))).code).toBe(
      'MODEL_DEPRECATED',
    );
    state = 'Retired';
    expect((await refusal(orch.submit(A, input({ sessionId: first.sessionId }), 'c'))).code).toBe(
      'POOL_UNAVAILABLE',
    );
    adapter.release(100);
  });

  it('step 4: ctx above the model and prompt + max_tokens above ctx → INVALID_PARAMS', async () => {
    const { orch } = core();
    expect((await refusal(orch.submit(A, input({ ctx: 4096 }), 'c'))).message).toMatch(/^ctx/);
    expect((await refusal(orch.submit(A, input({ maxTokens: 511 }), 'c'))).message).toMatch(/^max_tokens/);
  });

  it('cheap local refusals run before the engine tokenizer round trip', async () => {
    const { orch, adapter } = core({
      pool: { budgets: { session_tokens: 10 } },
      extra: { modelState: () => 'Deprecated' },
    });
    const used = input();
    await orch.submit(A, input({ taskId: used.taskId, modelRef: 'nope' }), 'c').catch(() => undefined);
    await refusal(orch.submit(A, input({ ctx: 4096 }), 'c'));
    await refusal(orch.submit(A, input(), 'c')); // Deprecated, new session
    expect(adapter.tokenizations).toBe(0);
  });

  it('step 4: the budget pre-check refuses before tokenizing when max_tokens alone cannot fit', async () => {
    const { orch, adapter } = core({ pool: { budgets: { session_tokens: 10 } } });
    const err = await refusal(orch.submit(A, input({ maxTokens: 11 }), 'c'));
    expect(err.code).toBe('INVALID_PARAMS');
    expect(err.message).toMatch(/session budget/);
    expect(adapter.tokenizations).toBe(0);
  });

  it('step 5: the rate token of a request refused by a later step is refunded', async () => {
    const { orch, adapter } = core({
      top: { fairness: { tenants: [{ id: 'alice', rps: 1, burst: 3 }] } },
      pool: { queue: { capacity: 1, full_policy: 'reject' } },
    });
    await orch.submit(A, input({ maxTokens: 50 }), 'c'); // running
    const queued = input();
    await orch.submit(A, queued, 'c');
    // Refused by the full queue, after the rate step charged the bucket's last token.
    const full = await refusal(orch.submit(A, input(), 'c'));
    expect(full.message).toMatch(/queue of pool 'p' is full/);
    orch.cancel(A, queued.taskId);
    // The refunded token admits one more; then the bucket is empty.
    await orch.submit(A, input(), 'c');
    expect((await refusal(orch.submit(A, input(), 'c'))).message).toMatch(/rate quota/);
    adapter.release(100);
  });

  it('step 7: a refused offer changes nothing (queue, quotas, reservations)', async () => {
    const { orch, pool, adapter } = core({
      pool: { queue: { capacity: 1, full_policy: 'reject' }, budgets: { session_tokens: 1000 } },
      top: { fairness: { tenants: [{ id: 'alice', max_concurrent: 10 }] } },
    });
    await orch.submit(A, input({ maxTokens: 50 }), 'c'); // running
    await orch.submit(A, input(), 'c'); // queued
    const before = orch.accounting();
    expect((await refusal(orch.submit(A, input(), 'c'))).code).toBe('ADMISSION_REJECT');
    expect(orch.accounting()).toEqual(before);
    expect(pool.queue.size).toBe(1);
    adapter.release(100);
  });
});

describe('regressions (each failed before admission was one sequence)', () => {
  it('soft preemption loses no task when the arrival is then refused: the planned victims stay queued', async () => {
    const { orch, pool, adapter } = core({
      top: { fairness: { weights: { interactive: 1, batch: 1 } } },
      pool: {
        queue: { capacity: 10, full_policy: 'reject' },
        admission: { priorities: { interactive: { capacity: 1 } } },
      },
    });
    await orch.submit(A, input({ maxTokens: 100 }), 'c'); // holds the only slot
    const batch = [input({ priority: 'batch' }), input({ priority: 'batch' })];
    for (const t of batch) await orch.submit(A, t, 'c');
    const queuedInteractive = input({ deadlineMs: 600_000 });
    await orch.submit(A, queuedInteractive, 'c'); // the interactive class is now full
    const arrival = input();
    const fair = predictFor(pool, arrival, 5, 2);
    const urgent = predictFor(pool, arrival, 5, 2, false);
    expect(urgent.finishMs).toBeLessThan(fair.finishMs);
    // Feasible only if lower-priority work were evicted; the full class then refuses it anyway.
    const deadlineMs = Math.ceil((fair.finishMs + urgent.finishMs) / 2);
    const err = await refusal(orch.submit(A, { ...arrival, deadlineMs }, 'c'));
    expect(err.code).toBe('ADMISSION_REJECT');
    expect(pool.queue.size).toBe(3);
    for (const t of batch) expect(eventTypes(orch, A, t.taskId)).toEqual(['started']);
    adapter.release(1_000);
    while (orch.accounting().liveTasks > 0) await settle();
    for (const t of batch) expect(eventTypes(orch, A, t.taskId).at(-1)).toBe('end');
    expect(orch.accounting()).toEqual({ quotaSlots: 0, budgetReservations: 0, liveTasks: 0 });
  });

  it('soft preemption evicts its victims only once the arrival is admitted', async () => {
    const { orch, pool, adapter } = core({
      top: { fairness: { weights: { interactive: 1, batch: 1 } } },
    });
    await orch.submit(A, input({ maxTokens: 100 }), 'c');
    const batch = input({ priority: 'batch' });
    await orch.submit(A, batch, 'c');
    const arrival = input();
    const fair = predictFor(pool, arrival, 5, 2);
    const urgent = predictFor(pool, arrival, 5, 2, false);
    await orch.submit(A, { ...arrival, deadlineMs: Math.ceil((fair.finishMs + urgent.finishMs) / 2) }, 'c');
    expect(orch.task(A, batch.taskId).log.since(0).at(-1)?.event).toMatchObject({
      type: 'error',
      data: { code: 'QUEUE_FULL_DROP_LRU', preempted: true },
    });
    adapter.release(1_000);
  });

  it('sessions are keyed by tenant and id: another tenant with the same id gets a separate, cold session', async () => {
    const { orch, adapter } = core({ replicas: 2 });
    const owner = input({ maxTokens: 1 });
    await orch.submit(A, owner, 'c');
    adapter.release(1);
    await orch.close(1_000).catch(() => undefined);
    const { orch: o2, adapter: a2 } = core({ replicas: 2 });
    const first = input({ maxTokens: 1 });
    await o2.submit(A, first, 'c');
    a2.release(1);
    while (!o2.task(A, first.taskId).terminal) await settle();
    const ownerView = o2.session(A, first.sessionId);
    expect(ownerView.turns).toBe(1);
    expect(ownerView.replicaId).toBeDefined();
    // Not visible to another tenant, not even by id.
    expect(() => o2.session(B, first.sessionId)).toThrow(/not found/);
    expect(() => o2.deleteSession(B, first.sessionId)).toThrow(/not found/);
    const intruder = input({ sessionId: first.sessionId, maxTokens: 1 });
    await o2.submit(B, intruder, 'c');
    expect(o2.task(B, intruder.taskId).kvWarm).toBe(false);
    // The owner's turns, TTL and affinity are untouched; the intruder has a session of its own.
    expect(o2.session(A, first.sessionId)).toMatchObject({ turns: 1, replicaId: ownerView.replicaId });
    expect(o2.session(B, first.sessionId).turns).toBe(1);
    o2.deleteSession(B, first.sessionId);
    expect(o2.session(A, first.sessionId).turns).toBe(1);
    a2.release(10);
  });

  it('quotas are checked after the guardrails: a request that can never succeed gets its 4xx, not a retriable 429', async () => {
    const { orch, adapter } = core({
      top: { fairness: { tenants: [{ id: 'alice', max_concurrent: 1 }] } },
      pool: { budgets: { session_tokens: 50 } },
    });
    await orch.submit(A, input({ maxTokens: 20 }), 'c'); // holds alice's only slot
    const tooLong = await refusal(orch.submit(A, input({ ctx: 4096 }), 'c'));
    expect(tooLong).toMatchObject({ code: 'INVALID_PARAMS', retriable: false });
    const overCtx = await refusal(orch.submit(A, input({ maxTokens: 511 }), 'c'));
    expect(overCtx.code).toBe('INVALID_PARAMS');
    const overBudget = await refusal(orch.submit(A, input({ maxTokens: 60 }), 'c'));
    expect(overBudget.code).toBe('INVALID_PARAMS');
    // An admissible request is the one that gets the 429.
    expect((await refusal(orch.submit(A, input(), 'c'))).code).toBe('ADMISSION_REJECT');
    adapter.release(100);
  });

  it('concurrent tasks of one session are reserved against its budget: no overspend', async () => {
    const { orch, adapter } = core({ pool: { budgets: { session_tokens: 30 } }, replicas: 3 });
    const sessionId = input().sessionId;
    // 'hi' is 2 tokens: each task may use 2 + 10 = 12 of the session's 30.
    await orch.submit(A, input({ sessionId, maxTokens: 10 }), 'c');
    await orch.submit(A, input({ sessionId, maxTokens: 10 }), 'c');
    const third = await refusal(orch.submit(A, input({ sessionId, maxTokens: 10 }), 'c'));
    expect(third.message).toMatch(/session budget: the task needs \d+ tokens but the session has 6 left/);
    expect(orch.accounting().budgetReservations).toBe(2);
    adapter.release(100);
    await orch.close(2_000);
    expect(orch.accounting().budgetReservations).toBe(0);
    // Reservations settled to what was used: 2 × (2 + 10).
    expect(orch.session(A, sessionId).usage.tokens).toBe(24);
  });

  it('expected_tokens is clamped to max_tokens: one huge hint does not make the pool DEADLINE_UNMET', async () => {
    let now = 1_000_000;
    const { orch, adapter } = core({ clock: { now: () => now } });
    // Measure service times first (100 ms of fake time per task), so predictions use learned costs.
    for (let i = 0; i < 3; i++) {
      const t = input({ maxTokens: 2 });
      await orch.submit(A, t, 'c');
      await settle();
      now += 100;
      adapter.release(2);
      while (!orch.task(A, t.taskId).terminal) await settle();
    }
    await orch.submit(A, input({ maxTokens: 50 }), 'c'); // busy slot
    await orch.submit(B, input({ maxTokens: 5, expectedTokens: 1e12, deadlineMs: 1e15 }), 'c');
    const next = await orch.submit(A, input({ deadlineMs: 60_000 }), 'c');
    expect(next.predictedStartMs).toBeLessThan(60_000);
    adapter.release(1_000);
  });

  it('cancelling an ended task answers 204 after the retention window, while its id is remembered', async () => {
    const { orch, adapter } = core({ top: { sse: { metrics_interval_ms: 60_000, retention_ms: 20 } } });
    const t = input({ maxTokens: 1 });
    await orch.submit(A, t, 'c');
    adapter.release(1);
    while (orch.accounting().liveTasks > 0) await settle();
    await new Promise((r) => setTimeout(r, 60));
    expect(() => orch.task(A, t.taskId)).toThrow(/not found/);
    expect(() => orch.cancel(A, t.taskId)).not.toThrow();
    // Another tenant learns nothing about the id.
    expect(() => orch.cancel(B, t.taskId)).toThrow(/not found/);
  });

  it('storage.remembered_task_ids bounds the used-id window: the oldest ended ids are forgotten', async () => {
    const { orch, adapter } = core({
      top: { sse: { metrics_interval_ms: 60_000, retention_ms: 1 }, storage: { remembered_task_ids: 2 } },
    });
    const ts = [input({ maxTokens: 1 }), input({ maxTokens: 1 }), input({ maxTokens: 1 })];
    for (const t of ts) {
      await orch.submit(A, t, 'c');
      adapter.release(1);
      while (orch.accounting().liveTasks > 0) await settle();
    }
    // Event-driven: wait for the sweep to drop the ended records (their ids stay remembered).
    const gone = (id: string) => {
      try {
        orch.task(A, id);
        return false;
      } catch {
        return true;
      }
    };
    while (!ts.every((t) => gone(t.taskId))) await new Promise((r) => setTimeout(r, 20));
    const [first, second, third] = ts as [SubmitInput, SubmitInput, SubmitInput];
    expect(() => orch.cancel(A, first.taskId)).toThrow(/not found/);
    for (const t of [second, third]) expect(() => orch.cancel(A, t.taskId)).not.toThrow();
    expect(await orch.submit(A, third, 'c')).toMatchObject({ taskId: third.taskId, ended: true });
    // The forgotten id is new again.
    const again = await orch.submit(A, first, 'c');
    expect(again.ended).toBeUndefined();
    adapter.release(1);
  });

  it('DELETE of a session cancels its queued and running tasks and erases its KV slot', async () => {
    const { orch, adapter, metrics } = core();
    const sessionId = input().sessionId;
    const done = input({ sessionId, maxTokens: 1 });
    await orch.submit(A, done, 'c');
    adapter.release(1);
    while (!orch.task(A, done.taskId).terminal) await settle();
    const running = input({ sessionId, maxTokens: 50 });
    const queued = input({ sessionId, maxTokens: 50 });
    const other = input({ maxTokens: 1 });
    await orch.submit(A, running, 'c');
    await orch.submit(A, queued, 'c');
    await orch.submit(A, other, 'c');
    orch.deleteSession(A, sessionId);
    for (const t of [running, queued])
      expect(orch.task(A, t.taskId).log.since(0).at(-1)?.event).toMatchObject({
        type: 'end',
        data: { canceled: true },
      });
    expect(() => orch.session(A, sessionId)).toThrow(/not found/);
    await settle();
    expect(adapter.erased).toEqual([0]);
    const text = await metrics.render();
    expect(text).toMatch(/tasks_canceled_total\{[^}]*replica_id="p-r0",reason="session-deleted"\} 1/);
    // The queued one had no replica: replica_id is empty, as the contract states.
    expect(text).toMatch(/tasks_canceled_total\{[^}]*replica_id="",reason="session-deleted"\} 1/);
    adapter.release(10);
    await orch.close(1_000);
    expect(eventTypes(orch, A, other.taskId).at(-1)).toBe('end');
  });

  it('a determinism: strict task is never hard-preempted (its stream stays byte-identical)', async () => {
    for (const determinism of ['strict', 'best_effort'] as const) {
      const { orch, adapter } = core({ top: { scheduling: { preemption: 'hard' } }, interruptible: true });
      const batch = input({ priority: 'batch', maxTokens: 20, determinism });
      await orch.submit(A, batch, 'c');
      adapter.release(2);
      await settle();
      const urgent = input({ maxTokens: 1 });
      await orch.submit(A, urgent, 'c');
      adapter.release(100);
      await orch.close(2_000);
      const preempted = orch
        .task(A, batch.taskId)
        .log.since(0)
        .some((e) => e.event.type === 'metrics' && e.event.data['preempted'] === true);
      expect(preempted, determinism).toBe(determinism === 'best_effort');
      expect(eventTypes(orch, A, batch.taskId).at(-1)).toBe('end');
    }
  });
});

/** Counts how many tokenizer round trips are in flight at once. */
class ConcurrencyProbe extends StepAdapter {
  inFlight = 0;
  maxInFlight = 0;
  async embed(inputs: readonly string[]): Promise<EmbedResult> {
    return { vectors: inputs.map(() => [0]), tokensIn: inputs.length };
  }
  override async countTokens(text: string, signal?: AbortSignal): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    return super.countTokens(text, signal);
  }
}

describe('the tokenizer round trip (SPEC §17 §5)', () => {
  it('embedding inputs are counted over a few concurrent round trips, in order', async () => {
    const probe = new ConcurrencyProbe();
    const { orch } = core({ adapters: [probe], embeddings: true });
    const inputs = Array.from({ length: 256 }, (_, k) => 'w '.repeat(1 + (k % 5)));
    await orch.submit(A, input({ workload: 'embedding', prompt: undefined, inputs, maxTokens: 1 }), 'c');
    expect(probe.maxInFlight).toBe(TOKENIZE_CONCURRENCY);
    expect(probe.tokenizations).toBe(256);
    // One input over the context is still found, whichever worker counts it.
    const tooLong = [...inputs.slice(0, 100), 'w '.repeat(600), ...inputs.slice(100, 200)];
    const err = await refusal(
      orch.submit(A, input({ workload: 'embedding', prompt: undefined, inputs: tooLong, maxTokens: 1 }), 'c'),
    );
    expect(err).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(err.message).toMatch(/inputs\[100\]/);
    probe.release(1_000);
  });

  it('a frozen replica costs one short wait: admission falls over to another ready replica, then asks it last', async () => {
    const frozen = new FrozenTokenizerAdapter();
    const healthy = new StepAdapter();
    const { orch } = core({ adapters: [frozen, healthy], extra: { tokenizeTimeoutMs: 50 } });
    await orch.submit(A, input(), 'c');
    await orch.submit(A, input(), 'c');
    await orch.submit(A, input(), 'c');
    // Asked once, then passed over while it is suspect.
    expect(frozen.tokenizations).toBe(1);
    expect(healthy.tokenizations).toBe(3);
    healthy.release(100);
  });

  it('when no replica answers, the refusal is a retriable 503 with a backoff, never a 500', async () => {
    const { orch } = core({
      adapters: [new FrozenTokenizerAdapter(), new FrozenTokenizerAdapter()],
      extra: { tokenizeTimeoutMs: 30 },
    });
    const err = await refusal(orch.submit(A, input(), 'c'));
    expect(err).toMatchObject({ code: 'POOL_UNAVAILABLE', httpStatus: 503, retriable: true });
    expect(err.retryAfterMs).toBeGreaterThanOrEqual(1_000);
    expect(err.message).toMatch(/2 tried/);
    expect(orch.accounting()).toEqual({ quotaSlots: 0, budgetReservations: 0, liveTasks: 0 });
  });
});
