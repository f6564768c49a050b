/** The pure parts of scheduling, on an injected clock: quotas, shares, predictions, budgets, preemption. */
import { describe, expect, it } from 'vitest';
import { chooseReplica } from '../../src/scheduler/placement.js';
import { PoolQueue, type QueueEntry } from '../../src/scheduler/pool-queue.js';
import { chooseHardVictim } from '../../src/scheduler/preemption.js';
import { ServicePredictor } from '../../src/scheduler/service-predictor.js';
import { ShareTracker } from '../../src/scheduler/share-tracker.js';
import { TenantQuotas } from '../../src/scheduler/tenant-quotas.js';
import { TokenBucket } from '../../src/scheduler/token-bucket.js';
import { admissionShortfall, costOf, exhausted, remaining } from '../../src/sessions/budget.js';

describe('TokenBucket and TenantQuotas', () => {
  it('allows a burst, then the refill rate, and says when the next token comes', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0)].every((r) => r.ok)).toBe(true);
    expect(b.take(0)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(b.take(250)).toEqual({ ok: false, retryAfterMs: 250 });
    expect(b.take(500).ok).toBe(true);
  });

  it('max_concurrent counts queued + running; refunds do not charge refused submissions', () => {
    const q = new TenantQuotas(new Map([['t', { maxConcurrent: 1, rps: 1, burst: 1 }]]));
    expect(q.check('t', 0)).toBeUndefined();
    q.refund('t');
    expect(q.check('t', 0)).toBeUndefined();
    q.acquire('t');
    expect(q.check('t', 0)).toEqual({ kind: 'max_concurrent', limit: 1 });
    q.release('t');
    expect(q.check('t', 0)).toMatchObject({ kind: 'rps', retryAfterMs: 1000 });
    expect(q.check('other', 0)).toBeUndefined();
  });
});

describe('ShareTracker', () => {
  it('tracks recent service shares within the window', () => {
    const s = new ShareTracker(1_000);
    for (let i = 0; i < 100; i++) {
      s.serve('a', 80);
      s.serve('b', 10);
    }
    expect(s.share('a')).toBeCloseTo(80 / 90, 2);
    for (let i = 0; i < 100; i++) s.serve('b', 50);
    expect(s.share('a')).toBeLessThan(0.01);
  });
});

describe('observed share tracks configured weights', () => {
  it('two backlogged tenants with weights 3:1 get about 75 % / 25 % of dispatched tokens', () => {
    const q = new PoolQueue<QueueEntry>({
      capacity: 10_000,
      priorityCapacity: { interactive: 10_000, batch: 10_000 },
      fullPolicy: 'reject',
      weights: { interactive: 8, batch: 1 },
      tenantWeight: (t) => (t === 'a' ? 3 : 1),
    });
    for (let i = 0; i < 2_000; i++) {
      for (const t of ['a', 'b'])
        q.offer({ id: `${t}${i}`, priority: 'batch', tenant: t, cost: 10 + (i % 7), deadlineAtMs: 1e12 });
    }
    const shares = new ShareTracker(2_000);
    for (let i = 0; i < 1_500; i++) {
      const x = q.takeNext();
      if (x) shares.serve(`${x.tenant}/batch`, x.cost);
    }
    expect(shares.share('a/batch')).toBeGreaterThan(0.7);
    expect(shares.share('a/batch')).toBeLessThan(0.8);
  });
});

describe('ServicePredictor', () => {
  it('learns per-replica prefill and decode rates, and list-schedules the queue ahead on slots', () => {
    const p = new ServicePredictor(1);
    expect(p.serviceMs(10, 10)).toBeUndefined();
    p.observe({ replicaId: 'r0', prefillTokens: 100, prefillMs: 50, decodeTokens: 20, decodeMs: 200 });
    expect(p.rates('r0')).toEqual({ prefillMsPerToken: 0.5, decodeMsPerToken: 10 });
    expect(p.serviceMs(100, 21, 'r1')).toBe(250); // unmeasured replica: the mean of the others
    // Two slots: one free, one busy for 100 ms; four tasks of 300 ms ahead.
    expect(p.predictStartMs(0, { busyRemainingMs: [100], freeSlots: 1 }, 300)).toBe(0);
    expect(p.predictStartMs(1, { busyRemainingMs: [100], freeSlots: 1 }, 300)).toBe(100);
    expect(p.predictStartMs(4, { busyRemainingMs: [100], freeSlots: 1 }, 300)).toBe(600);
    expect(p.predictStartMs(3, { busyRemainingMs: [], freeSlots: 0 }, 300)).toBe(Number.POSITIVE_INFINITY);
    p.observeService(100, 200);
    expect(p.serviceMsForCost(50)).toBe(100);
  });

  it('extrapolates very deep queues instead of simulating every task', () => {
    const p = new ServicePredictor();
    const ms = p.predictStartMs(100_000, { busyRemainingMs: [], freeSlots: 4 }, 10);
    expect(ms).toBeCloseTo(250_000, -2);
  });
});

describe('session budgets', () => {
  const limits = { sessionTokens: 100, sessionWallMs: 1_000, sessionCost: 0.05 };
  const prices = { inputPer1kTokens: 0.1, outputPer1kTokens: 0.5 };
  it('admission: refuses when the remainder cannot cover prompt + max_tokens or their cost', () => {
    const used = { tokens: 60, wallMs: 0, cost: 0 };
    expect(admissionShortfall(used, limits, prices, 10, 20)).toBeUndefined();
    expect(admissionShortfall(used, limits, prices, 10, 40)).toEqual({ kind: 'tokens', need: 50, left: 40 });
    expect(admissionShortfall({ tokens: 0, wallMs: 0, cost: 0.049 }, limits, prices, 10, 20)).toMatchObject({
      kind: 'cost',
    });
    expect(admissionShortfall({ tokens: 0, wallMs: 1_000, cost: 0 }, limits, prices, 1, 1)).toMatchObject({
      kind: 'wall_ms',
    });
    expect(costOf(prices, 1000, 1000)).toBeCloseTo(0.6, 10);
  });
  it('decode: the first exhausted budget; remainders never negative; unset budgets absent', () => {
    expect(exhausted({ tokens: 100, wallMs: 0, cost: 0 }, limits)).toBe('tokens');
    expect(exhausted({ tokens: 1, wallMs: 1_000, cost: 0 }, limits)).toBe('wall_ms');
    expect(exhausted({ tokens: 1, wallMs: 1, cost: 0 }, limits)).toBeUndefined();
    expect(remaining({ tokens: 150, wallMs: 0, cost: 0 }, limits)).toMatchObject({ tokens: 0 });
    expect(
      remaining(
        { tokens: 1, wallMs: 0, cost: 0 },
        { sessionTokens: 5, sessionWallMs: undefined, sessionCost: undefined },
      ),
    ).toEqual({ tokens: 4 });
  });
});

describe('hard preemption victim and topology tie-break', () => {
  it('stops the newest task of the lowest class on an interruptible replica, never an equal class', () => {
    const c = (
      taskId: string,
      priority: 'interactive' | 'batch',
      startedAtMs: number,
      interruptible = true,
    ) => ({
      taskId,
      replicaId: 'r',
      priority,
      startedAtMs,
      interruptible,
      determinism: 'best_effort' as const,
    });
    expect(
      chooseHardVictim([c('i', 'interactive', 5), c('b1', 'batch', 1), c('b2', 'batch', 3)], 'interactive')
        ?.taskId,
    ).toBe('b2');
    expect(chooseHardVictim([c('b', 'batch', 1, false)], 'interactive')).toBeUndefined();
    expect(chooseHardVictim([c('b', 'batch', 1)], 'batch')).toBeUndefined();
  });

  it('equally loaded replicas: the lower topology cost wins', () => {
    const loads = [
      { id: 'p-r0', slotsTotal: 2, inFlight: 1, topologyCost: 2 },
      { id: 'p-r1', slotsTotal: 2, inFlight: 1, topologyCost: 1 },
    ];
    expect(chooseReplica(loads, { affinity: undefined, overloadRatio: 0.75 })).toBe('p-r1');
    expect(
      chooseReplica([{ ...loads[0]!, inFlight: 0 }, loads[1]!], { affinity: undefined, overloadRatio: 0.75 }),
    ).toBe('p-r0');
  });
});
