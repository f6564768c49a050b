/**
 * Replica sets span pools (SPEC §17 §4): pools of one model, engine and engine version form one
 * set; admission resolves the set and picks a member, dispatch is late-bound to any member with
 * a free slot, and a drained or lost member hands its queued work to the others. Pools of
 * another engine version never take the set's work (ORCH-3046).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { OrchError } from '../../src/errors/orch-error.js';
import { replicaSets } from '../../src/orchestrator/replica-set.js';
import { closeCores, fleet, input, settle, tenant } from '../support/core.js';
import { FailingAdapter } from '../support/fake-pool.js';

afterEach(closeCores);

const who = tenant('t');

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await settle();
  expect(cond()).toBe(true);
}

describe('replica sets across pools', () => {
  it('groups pools by engine, model and engine version, with unique ids and all members', () => {
    const { orch } = fleet([{ id: 'a' }, { id: 'b' }, { id: 'c', engineVersion: 'fake-2' }]);
    const sets = replicaSets(orch.pools);
    expect(sets.map((s) => s.members.map((p) => p.id))).toEqual([['a', 'b'], ['c']]);
    expect(new Set(sets.map((s) => s.id)).size).toBe(2);
  });

  it('a second pool of the set takes work while the first is busy', async () => {
    const { orch, pool } = fleet([{ id: 'a' }, { id: 'b' }]);
    const first = await orch.submit(who, input(), 'c1');
    const second = await orch.submit(who, input(), 'c2');
    await settle();
    const on = [first, second].map((t) => orch.task(who, t.taskId).replicaId);
    expect(on.sort()).toEqual(['a-r0', 'b-r0']);
    expect(pool('a').queue.size + pool('b').queue.size).toBe(0);
  });

  it('late binding: a member that frees a slot takes the next task queued on a busy sibling', async () => {
    const { orch, pool, adaptersOf } = fleet([{ id: 'a' }, { id: 'b' }]);
    const t1 = await orch.submit(who, input(), 'c1');
    const onA = orch.task(who, t1.taskId).replicaId === 'a-r0';
    const [busy, free] = onA ? (['a', 'b'] as const) : (['b', 'a'] as const);
    const t2 = await orch.submit(who, input(), 'c2');
    // The session of t1 keeps t3 on t1's pool (KV affinity), where it has to wait.
    const t3 = await orch.submit(who, input({ sessionId: orch.task(who, t1.taskId).spec.sessionId }), 'c3');
    await settle();
    expect(orch.task(who, t2.taskId).replicaId).toBe(`${free}-r0`);
    expect(pool(busy).queue.size).toBe(1);
    expect(orch.task(who, t3.taskId).poolId).toBe(busy);
    adaptersOf(free)[0]!.release(5);
    await until(() => orch.task(who, t3.taskId).replicaId !== undefined);
    expect(orch.task(who, t3.taskId).replicaId).toBe(`${free}-r0`);
    expect(orch.task(who, t3.taskId).poolId).toBe(free);
    expect(pool(busy).queue.size).toBe(0);
    adaptersOf(free)[0]!.release(10);
    adaptersOf(busy)[0]!.release(10);
    await until(() => [t1, t2, t3].every((t) => orch.task(who, t.taskId).terminal));
    for (const t of [t1, t2, t3]) expect(orch.task(who, t.taskId).state.kind).toBe('completed');
    const events = orch.task(who, t3.taskId).log.since(0);
    expect(events.filter((e) => e.event.type === 'started')).toHaveLength(1);
  });

  it('draining a member moves its queued tasks to the others, which finish them', async () => {
    const { orch, pool, adaptersOf } = fleet([{ id: 'a' }, { id: 'b' }]);
    // Both members busy, then two more queued on a through the session that lives there.
    const head = await orch.submit(who, input(), 'c0');
    expect(orch.task(who, head.taskId).poolId).toBe('a');
    const other = await orch.submit(who, input(), 'c0b');
    expect(orch.task(who, other.taskId).poolId).toBe('b');
    const sid = orch.task(who, head.taskId).spec.sessionId;
    const queued = [
      await orch.submit(who, input({ sessionId: sid }), 'c1'),
      await orch.submit(who, input({ sessionId: sid }), 'c2'),
    ];
    await settle();
    expect(pool('a').queue.size).toBe(2);
    orch.drain('a', 60_000);
    await settle();
    expect(pool('a').queue.size).toBe(0);
    expect(pool('b').queue.size).toBe(2);
    for (const ad of [...adaptersOf('a'), ...adaptersOf('b')]) ad.release(50);
    const all = [head, other, ...queued];
    await until(() => all.every((t) => orch.task(who, t.taskId).terminal));
    for (const t of all) expect(orch.task(who, t.taskId).state.kind).toBe('completed');
    for (const t of queued) expect(orch.task(who, t.taskId).replicaId).toBe('b-r0');
    // New work goes to the member that still takes it.
    const later = await orch.submit(who, input({ sessionId: sid }), 'c3');
    expect(orch.task(who, later.taskId).poolId).toBe('b');
  });

  it('a lost member: its queued work and new work go to the others', async () => {
    const { orch, pool, sups, adaptersOf } = fleet([{ id: 'a' }, { id: 'b' }]);
    const t1 = await orch.submit(who, input(), 'c1');
    expect(orch.task(who, t1.taskId).poolId).toBe('a');
    const sid = orch.task(who, t1.taskId).spec.sessionId;
    const t2 = await orch.submit(who, input(), 'c2'); // b
    const t3 = await orch.submit(who, input({ sessionId: sid }), 'c3'); // queued on a
    await settle();
    expect(pool('a').queue.size).toBe(1);
    sups.get('a')!.setState(0, { kind: 'unready', cause: 'host lost', lost: true });
    adaptersOf('b')[0]!.release(50);
    await until(() => [t1, t2, t3].every((t) => orch.task(who, t.taskId).terminal));
    // t1 had produced nothing on the lost host: it is dispatched once more, on the other member.
    for (const t of [t1, t2, t3]) {
      expect(orch.task(who, t.taskId).state.kind).toBe('completed');
      expect(orch.task(who, t.taskId).replicaId).toBe('b-r0');
    }
    expect(orch.task(who, t1.taskId).redispatches).toBe(1);
    const t4 = await orch.submit(who, input({ sessionId: sid }), 'c4');
    expect(orch.task(who, t4.taskId).poolId).toBe('b');
  });

  it('a task that failed before its first token on a one-replica member completes on another member', async () => {
    const failing = new FailingAdapter();
    const { orch, adaptersOf } = fleet([{ id: 'a', adapters: [failing] }, { id: 'b' }]);
    const t1 = await orch.submit(who, input(), 'c1');
    expect(orch.task(who, t1.taskId).poolId).toBe('a');
    await until(() => orch.task(who, t1.taskId).replicaId === 'b-r0');
    adaptersOf('b')[0]!.release(10);
    await until(() => orch.task(who, t1.taskId).terminal);
    const t = orch.task(who, t1.taskId);
    expect(t.state.kind).toBe('completed');
    expect(t.redispatches).toBe(1);
    expect(failing.requests).toHaveLength(1);
    const types = t.log.since(0).map((e) => e.event.type);
    expect(types.filter((x) => x === 'error')).toEqual([]);
  });

  it('batch work goes to a member whose SLO breaker does not shed it', async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const { orch, pool } = fleet([{ id: 'a' }, { id: 'b' }], { clock });
    const breaker = pool('a').sloBreaker;
    const open = breaker.settings.openAfterMs;
    breaker.observe(now, { violated: true, cause: 'test' });
    now += open + 1;
    breaker.observe(now, { violated: true, cause: 'test' });
    expect(breaker.sheds('batch')).toBe(true);
    // Admission picks b, and late binding does not hand b's queued batch work to idle a.
    for (let i = 0; i < 3; i++) {
      const t = await orch.submit(who, input({ priority: 'batch' }), `b${i}`);
      expect(orch.task(who, t.taskId).poolId).toBe('b');
    }
    await settle();
    expect(pool('a').running.size).toBe(0);
    expect(pool('b').queue.size).toBe(2);
  });

  it('pools of another engine version never take the set’s work', async () => {
    const { orch, pool, adaptersOf } = fleet([{ id: 'a' }, { id: 'c', engineVersion: 'fake-2' }]);
    const t1 = await orch.submit(who, input(), 'c1');
    const sid = orch.task(who, t1.taskId).spec.sessionId;
    const t2 = await orch.submit(who, input({ sessionId: sid }), 'c2');
    await settle();
    // c is idle and could serve m, but it is another replica set: t2 waits for a.
    expect(orch.task(who, t1.taskId).poolId).toBe('a');
    expect(orch.task(who, t2.taskId).poolId).toBe('a');
    expect(orch.task(who, t2.taskId).replicaId).toBeUndefined();
    expect(pool('c').running.size).toBe(0);
    adaptersOf('a')[0]!.release(20);
    await until(() => orch.task(who, t2.taskId).terminal);
    expect(orch.task(who, t2.taskId).replicaId).toBe('a-r0');
  });

  it('property: over random mixes every accepted task ends once, on a replica of its own set', async () => {
    const opArb = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({ op: fc.constant('submit' as const), session: fc.nat({ max: 3 }) }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('release' as const),
          pool: fc.constantFrom('a', 'b', 'c'),
          n: fc.integer({ min: 1, max: 5 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('state' as const),
          pool: fc.constantFrom('a', 'b', 'c'),
          ready: fc.boolean(),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('drain' as const), pool: fc.constantFrom('a', 'b') }),
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const f = fleet(
          [
            { id: 'a', pool: { queue: { capacity: 4 } } },
            { id: 'b', replicas: 2, pool: { queue: { capacity: 4 } } },
            { id: 'c', engineVersion: 'fake-2' },
          ],
          { top: {} },
        );
        const sessions = Array.from({ length: 4 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
        const accepted: string[] = [];
        const setOf = (pool: string) => (pool === 'c' ? 'c' : 'ab');
        const firstSet = new Map<string, string>();
        for (const op of ops) {
          if (op.op === 'submit') {
            try {
              const t = await f.orch.submit(
                who,
                input({ sessionId: sessions[op.session]!, maxTokens: 3 }),
                'c',
              );
              accepted.push(t.taskId);
              firstSet.set(t.taskId, setOf(f.orch.task(who, t.taskId).poolId));
            } catch (err) {
              expect(err).toBeInstanceOf(OrchError);
            }
          } else if (op.op === 'release') {
            for (const ad of f.adaptersOf(op.pool)) ad.release(op.n);
          } else if (op.op === 'state') {
            f.sups
              .get(op.pool)!
              .setState(0, op.ready ? { kind: 'ready' } : { kind: 'unready', cause: 'test' });
          } else {
            if (!f.pool(op.pool).draining) f.orch.drain(op.pool, 60_000);
          }
          await settle(4);
          for (const id of accepted) {
            const t = f.orch.task(who, id);
            expect(setOf(t.poolId)).toBe(firstSet.get(id));
            if (t.replicaId !== undefined) expect(t.replicaId.startsWith(`${t.poolId}-`)).toBe(true);
          }
        }
        // Bring every replica back and let everything run out: each task ends exactly once.
        for (const id of ['a', 'b', 'c'])
          for (let i = 0; i < (id === 'b' ? 2 : 1); i++) f.sups.get(id)!.setState(i, { kind: 'ready' });
        for (let round = 0; round < 50; round++) {
          for (const id of ['a', 'b', 'c']) for (const ad of f.adaptersOf(id)) ad.release(5);
          await settle(4);
          if (accepted.every((id) => f.orch.task(who, id).terminal)) break;
        }
        for (const id of accepted) {
          const t = f.orch.task(who, id);
          expect(t.terminal).toBe(true);
          const terminals = t.log.since(0).filter((e) => e.event.type === 'end' || e.event.type === 'error');
          expect(terminals).toHaveLength(1);
        }
        await closeCores();
      }),
      { numRuns: 40 },
    );
  });
});
