/**
 * Start predictions against a synthetic completion stream (fake clock, seeded costs): a pool of
 * two replicas of unequal speed, four slots each, fed faster than it drains, so the queue grows
 * the way the flood benchmark's does. Each arrival's prediction is compared with when the
 * simulated dispatcher really starts it.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import type { PoolSupervisor } from '../../src/pool/replica.js';
import {
  ServicePredictor,
  predictStartOnSlots,
  projectedMsPerCost,
} from '../../src/scheduler/service-predictor.js';
import { mulberry32 } from '../../src/util/mulberry32.js';
import { FakeSupervisor, StepAdapter } from '../support/fake-pool.js';

const SLOTS = 4;
/** Milliseconds per scheduling-cost token on each replica: r1 is four times slower. */
const PACE: Record<string, number> = { 'p-r0': 4, 'p-r1': 16 };

function pool(clock: { now: () => number }): PoolRuntime {
  const { config } = validateConfig({
    profile: 'dev',
    pools: [{ id: 'p', engine: 'vllm', model: { id: 'm' }, ctx: 4096, devices: 'cpu', replicas: 2 }],
  });
  const inner = new FakeSupervisor('p', [new StepAdapter(), new StepAdapter()]);
  const sup: PoolSupervisor = {
    poolId: 'p',
    start: async () => undefined,
    stop: async () => undefined,
    onChange: () => () => undefined,
    restartReplica: async () => false,
    replicas: () =>
      inner.replicas().map((r) => ({ ...r, props: r.props && { ...r.props, slotsTotal: SLOTS } })),
  };
  const p = config.pools[0];
  if (!p) throw new Error('no pool');
  return new PoolRuntime(p, sup, {
    weights: config.fairness.weights,
    tenantWeight: () => 1,
    mode: 'fifo',
    deadlineSlackTokens: config.scheduling.deadlineSlackTokens,
    clock,
  });
}

interface Arrival {
  readonly atMs: number;
  readonly predictedMs: number;
  startedMs?: number;
}

/**
 * `tasks` arrivals every `gapMs`, FIFO onto the earliest free slot; completions are reported
 * to the predictor as the dispatcher reports them (prefill, then decode).
 */
function simulate(tasks: number, gapMs: number): { arrivals: Arrival[]; firstCompletionsMs: number } {
  let now = 0;
  const rt = pool({ now: () => now });
  const random = mulberry32(7);
  const queue: { id: string; cost: number; arrival: Arrival }[] = [];
  const ends: { atMs: number; id: string; replicaId: string; cost: number; startedMs: number }[] = [];
  const arrivals: Arrival[] = [];
  const completedOn = new Set<string>();
  let firstCompletionsMs = Number.POSITIVE_INFINITY;
  let next = 0;
  const dispatch = (): void => {
    for (const replicaId of Object.keys(PACE)) {
      while ((rt.inFlight.get(replicaId) ?? 0) < SLOTS && queue.length > 0) {
        const t = queue.shift();
        if (!t) break;
        t.arrival.startedMs = now;
        rt.inFlight.set(replicaId, (rt.inFlight.get(replicaId) ?? 0) + 1);
        rt.running.set(t.id, {
          taskId: t.id,
          replicaId,
          priority: 'batch',
          tenant: 't',
          cost: t.cost,
          startedAtMs: now,
        });
        ends.push({
          atMs: now + (PACE[replicaId] ?? 1) * t.cost,
          id: t.id,
          replicaId,
          cost: t.cost,
          startedMs: now,
        });
      }
    }
  };
  while (next < tasks || ends.length > 0) {
    const arriveAt = next < tasks ? next * gapMs : Number.POSITIVE_INFINITY;
    ends.sort((a, b) => a.atMs - b.atMs);
    const end = ends[0];
    if (end && end.atMs <= arriveAt) {
      ends.shift();
      now = end.atMs;
      rt.running.delete(end.id);
      rt.inFlight.set(end.replicaId, (rt.inFlight.get(end.replicaId) ?? 1) - 1);
      const pace = PACE[end.replicaId] ?? 1;
      rt.predictor.observe({
        replicaId: end.replicaId,
        prefillTokens: 10,
        prefillMs: pace * 10,
        decodeTokens: end.cost - 11,
        decodeMs: pace * (end.cost - 10),
      });
      rt.predictor.observeService(end.cost, now - end.startedMs);
      rt.estimator.observe(now - end.startedMs, end.cost - 10, pace * (end.cost - 10));
      completedOn.add(end.replicaId);
      if (completedOn.size === Object.keys(PACE).length)
        firstCompletionsMs = Math.min(firstCompletionsMs, now);
      dispatch();
      continue;
    }
    now = arriveAt;
    const cost = 40 + Math.floor(random() * 40);
    const ahead = queue.reduce((c, t) => c + t.cost, 0);
    const arrival: Arrival = {
      atMs: now,
      predictedMs: rt.predictStartMs(queue.length, queue.length > 0 ? ahead / queue.length : cost),
    };
    arrivals.push(arrival);
    queue.push({ id: `t${next}`, cost, arrival });
    next++;
    dispatch();
  }
  return { arrivals, firstCompletionsMs };
}

const relativeError = (a: Arrival): number => {
  const actual = (a.startedMs ?? 0) - a.atMs;
  return Math.abs(a.predictedMs - actual) / Math.max(100, actual);
};

const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe('start predictions under a growing queue', () => {
  it('are within 20 % at the median once each replica has completed tasks, at its own pace', () => {
    const { arrivals, firstCompletionsMs } = simulate(400, 40);
    expect(Number.isFinite(firstCompletionsMs)).toBe(true);
    const later = arrivals.filter((a) => a.atMs > firstCompletionsMs);
    expect(later.length).toBeGreaterThan(300);
    // The queue really grows: the last arrivals wait for seconds.
    expect(Math.max(...later.map((a) => (a.startedMs ?? 0) - a.atMs))).toBeGreaterThan(2_000);
    const error = median(later.map(relativeError));
    expect(error).toBeLessThan(0.2);
    // Each slot at its own replica's pace: one pool-wide pace is ~15 % off here (busy slots of the
    // slow replica taken to free as early as the fast one's).
    expect(error).toBeLessThan(0.05);
  });

  it('are never below what the running tasks have already taken, before any completion', () => {
    let now = 0;
    const rt = pool({ now: () => now });
    for (let k = 0; k < 2 * SLOTS; k++) {
      const replicaId = k < SLOTS ? 'p-r0' : 'p-r1';
      rt.inFlight.set(replicaId, (rt.inFlight.get(replicaId) ?? 0) + 1);
      rt.running.set(`t${k}`, {
        taskId: `t${k}`,
        replicaId,
        priority: 'batch',
        tenant: 't',
        cost: 50,
        startedAtMs: 0,
      });
    }
    // The prior (1 s a task): the running wave ends at 1 s, the one ahead at 2 s.
    expect(rt.predictStartMs(2 * SLOTS, 50)).toBeCloseTo(2_000);
    // Every slot is busy with a task that has run 3 s: tasks take at least that long, so the
    // second wave waits at least as long again, whatever the prior said.
    now = 3_000;
    expect(rt.predictStartMs(2 * SLOTS, 50)).toBeGreaterThanOrEqual(3_000);
  });
});

/** Time to first token and milliseconds per later token on each replica: r1 is twice as slow. */
const STREAM: Record<string, { ttftMs: number; perTokenMs: number }> = {
  'p-r0': { ttftMs: 30, perTokenMs: 5 },
  'p-r1': { ttftMs: 30, perTokenMs: 10 },
};

/**
 * A flood admitted faster than anything finishes: `tasks` arrivals every `gapMs`, each streaming
 * `outputTokens` at its replica's pace, FIFO onto the earliest free slot. Running tasks expose
 * their stream counters as the dispatcher's token loop leaves them on the task record.
 */
function coldFlood(
  tasks: number,
  gapMs: number,
  outputTokens: number,
): { arrivals: Arrival[]; firstCompletionMs: number } {
  let now = 0;
  const rt = pool({ now: () => now });
  const queue: { id: string; cost: number; arrival: Arrival }[] = [];
  const ends: { atMs: number; id: string; replicaId: string; startedMs: number }[] = [];
  const arrivals: Arrival[] = [];
  let firstCompletionMs = Number.POSITIVE_INFINITY;
  const serviceMs = (replicaId: string): number => {
    const s = STREAM[replicaId] ?? { ttftMs: 0, perTokenMs: 1 };
    return s.ttftMs + s.perTokenMs * (outputTokens - 1);
  };
  const dispatch = (): void => {
    for (const replicaId of Object.keys(STREAM)) {
      while ((rt.inFlight.get(replicaId) ?? 0) < SLOTS && queue.length > 0) {
        const t = queue.shift();
        if (!t) break;
        const startedAtMs = now;
        t.arrival.startedMs = now;
        const { ttftMs, perTokenMs } = STREAM[replicaId] ?? { ttftMs: 0, perTokenMs: 1 };
        const stream = {
          get firstTokenAtMs() {
            return now >= startedAtMs + ttftMs ? startedAtMs + ttftMs : undefined;
          },
          get tokensOut() {
            if (now < startedAtMs + ttftMs) return 0;
            return Math.min(outputTokens, 1 + Math.floor((now - startedAtMs - ttftMs) / perTokenMs));
          },
        };
        rt.inFlight.set(replicaId, (rt.inFlight.get(replicaId) ?? 0) + 1);
        rt.running.set(t.id, {
          taskId: t.id,
          replicaId,
          priority: 'batch',
          tenant: 't',
          cost: t.cost,
          startedAtMs,
          expectedTokens: outputTokens,
          stream,
        });
        ends.push({ atMs: now + serviceMs(replicaId), id: t.id, replicaId, startedMs: now });
      }
    }
  };
  let next = 0;
  while (next < tasks || ends.length > 0) {
    const arriveAt = next < tasks ? next * gapMs : Number.POSITIVE_INFINITY;
    ends.sort((a, b) => a.atMs - b.atMs);
    const end = ends[0];
    if (end && end.atMs <= arriveAt) {
      ends.shift();
      now = end.atMs;
      firstCompletionMs = Math.min(firstCompletionMs, now);
      rt.running.delete(end.id);
      rt.inFlight.set(end.replicaId, (rt.inFlight.get(end.replicaId) ?? 1) - 1);
      const s = STREAM[end.replicaId] ?? { ttftMs: 0, perTokenMs: 1 };
      rt.predictor.observe({
        replicaId: end.replicaId,
        prefillTokens: 20,
        prefillMs: s.ttftMs,
        decodeTokens: outputTokens - 1,
        decodeMs: s.perTokenMs * (outputTokens - 1),
      });
      rt.predictor.observeService(20 + outputTokens, now - end.startedMs);
      rt.estimator.observe(now - end.startedMs, outputTokens, s.perTokenMs * (outputTokens - 1));
      dispatch();
      continue;
    }
    now = arriveAt;
    const cost = 20 + outputTokens;
    const arrival: Arrival = { atMs: now, predictedMs: rt.predictStartMs(queue.length, cost) };
    arrivals.push(arrival);
    queue.push({ id: `t${next}`, cost, arrival });
    next++;
    dispatch();
  }
  return { arrivals, firstCompletionMs };
}

describe('start predictions from the cold start', () => {
  it('are within 20 % at the median for a flood admitted before any completion', () => {
    // 200 tasks in 200 ms; the first completion comes at 265 ms: every prediction is made cold.
    const { arrivals, firstCompletionMs } = coldFlood(200, 1, 48);
    expect(Math.max(...arrivals.map((a) => a.atMs))).toBeLessThan(firstCompletionMs);
    // The queue really builds: the last task waits seconds (the 1 s prior would say ~25 s).
    expect(Math.max(...arrivals.map((a) => (a.startedMs ?? 0) - a.atMs))).toBeGreaterThan(5_000);
    // Until the first tokens have streamed (~40 ms) there is only the prior to go on; after
    // that, the running tasks' own pace, per replica.
    expect(median(arrivals.map(relativeError))).toBeLessThan(0.2);
    const streaming = arrivals.filter((a) => a.atMs >= 50);
    expect(median(streaming.map(relativeError))).toBeLessThan(0.05);
  });

  it('projects a running task from its first tokens to its expected length', () => {
    const at = { startedAtMs: 1_000, cost: 60, expectedTokens: 50 };
    expect(projectedMsPerCost({ ...at, firstTokenAtMs: undefined, tokens: 0 }, 1_010)).toBeUndefined();
    // One or two tokens are not a pace yet.
    expect(projectedMsPerCost({ ...at, firstTokenAtMs: 1_040, tokens: 2 }, 1_055)).toBeUndefined();
    // 40 ms to the first token, then 10 ms a token (now is half a gap past the tenth): 40 + 49 × 10.
    expect(projectedMsPerCost({ ...at, firstTokenAtMs: 1_040, tokens: 10 }, 1_135)).toBeCloseTo(530 / 60);
  });
});

describe('ServicePredictor per replica', () => {
  it('takes the provisional pace of a replica until its own completions replace it', () => {
    const p = new ServicePredictor();
    const provisional = new Map([
      ['a', 5],
      ['b', 7],
    ]);
    expect(p.msPerCost('a', provisional)).toBe(5);
    // Nothing measured anywhere: a replica with no running pace borrows the provisional mean.
    expect(p.msPerCost('c', provisional)).toBe(6);
    p.observe({ replicaId: 'a', prefillTokens: 9, prefillMs: 90, decodeTokens: 90, decodeMs: 910 });
    expect(p.measured('a')).toBe(true);
    expect(p.msPerCost('a', provisional)).toBeCloseTo(10);
    // An unmeasured replica keeps its own running pace over another replica's completions.
    expect(p.msPerCost('b', provisional)).toBe(7);
    expect(p.msPerCost('c', provisional)).toBeCloseTo(10);
  });

  it('learns each replica from its own completions; an unmeasured one borrows their mean', () => {
    const p = new ServicePredictor();
    expect(p.msPerCost('a')).toBeUndefined();
    p.observe({ replicaId: 'a', prefillTokens: 9, prefillMs: 90, decodeTokens: 90, decodeMs: 910 });
    p.observe({ replicaId: 'b', prefillTokens: 9, prefillMs: 270, decodeTokens: 90, decodeMs: 2730 });
    expect(p.msPerCost('a')).toBeCloseTo(10);
    expect(p.msPerCost('b')).toBeCloseTo(30);
    expect(p.msPerCost('c')).toBeCloseTo(20);
    // The first few samples are averaged: one outlier does not set the pace alone.
    p.observe({ replicaId: 'a', prefillTokens: 9, prefillMs: 270, decodeTokens: 90, decodeMs: 2730 });
    expect(p.msPerCost('a')).toBeCloseTo(20);
  });

  it('list-schedules on slots of unequal pace, and extrapolates deep queues at their throughput', () => {
    const slots = [
      { readyInMs: 0, msPerCost: 1 },
      { readyInMs: 50, msPerCost: 3 },
    ];
    expect(predictStartOnSlots(0, slots, 100)).toBe(0);
    expect(predictStartOnSlots(1, slots, 100)).toBe(50);
    expect(predictStartOnSlots(2, slots, 100)).toBe(100);
    // 100 000 tasks at 4 tasks per 300 ms together (3 of 100 ms, 1 of 300 ms).
    expect(predictStartOnSlots(100_000, slots, 100)).toBeCloseTo(7_500_000, -4);
  });
});
