/**
 * The task journal on both stores (SPEC §17.1): group commit (the admissions of one event-loop
 * turn are one transaction), all-or-nothing batches, the state a restart reads back, pruning.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_PRINCIPAL } from '../../src/http/auth.js';
import { PostgresStore } from '../../src/persistence/postgres-store.js';
import { SqliteStore } from '../../src/persistence/sqlite-store.js';
import type { Store, TaskJournalEntry, TaskJournalOp } from '../../src/persistence/store.js';
import { TaskJournal } from '../../src/persistence/task-journal.js';
import { SEQ_EPOCH } from '../../src/tasks/event-log.js';
import { closeCores, core, input, settle } from '../support/core.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let pg: TestPostgres;
let dir: string;
beforeAll(async () => {
  pg = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'llorch-journal-'));
}, 120_000);
afterAll(async () => {
  await pg.stop();
});

const backends: [string, () => Promise<Store>][] = [
  ['sqlite', () => Promise.resolve(new SqliteStore(join(dir, 'llorch.db')))],
  ['postgres', () => PostgresStore.open(pg.url)],
];

let n = 0;
const entry = (prefix: string, o: Partial<TaskJournalEntry> = {}): TaskJournalEntry => {
  n++;
  return {
    taskId: `${prefix}-${String(n).padStart(6, '0')}`,
    tenant: 'alice',
    poolId: 'p',
    bodyDigest: `digest-${n}`,
    spec: { taskId: `${prefix}-${n}`, prompt: 'Grüße ✓', maxTokens: 4, deadlineMs: 60_000 },
    acceptance: { taskId: `${prefix}-${n}`, queuePosition: 0, predictedStartMs: 0, backoffMs: 0, budget: {} },
    cost: 12.5,
    acceptedMs: 1_700_000_000_000 + n,
    deadlineAtMs: 1_700_000_060_000 + n,
    restarts: 0,
    state: 'queued',
    ...o,
  };
};

/** Counts the store's journal transactions. */
function counting(store: Store): { store: Pick<Store, 'writeTaskJournal'>; batches: TaskJournalOp[][] } {
  const batches: TaskJournalOp[][] = [];
  return {
    batches,
    store: {
      writeTaskJournal: (ops) => {
        batches.push([...ops]);
        return store.writeTaskJournal(ops);
      },
    },
  };
}

describe.each(backends)('task journal: %s', (name, open) => {
  let store: Store;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store.close();
  });
  const mine = async (prefix: string) =>
    (await store.loadTaskJournal(1_000_000)).filter((e) => e.taskId.startsWith(prefix));

  it('group commit: 200 admissions of one event-loop turn are one transaction', async () => {
    const c = counting(store);
    const errors: unknown[] = [];
    const journal = new TaskJournal({ store: c.store, onError: (err) => errors.push(err) });
    const prefix = `${name}-group`;
    const entries = Array.from({ length: 200 }, () => entry(prefix));
    for (const e of entries) journal.accepted(e);
    await journal.committed();
    expect(errors).toEqual([]);
    expect(c.batches).toHaveLength(1);
    expect(c.batches[0]).toHaveLength(200);
    expect(journal.stats).toEqual({ batches: 1, ops: 200 });
    const back = await mine(prefix);
    expect(back.map((e) => e.taskId)).toEqual(entries.map((e) => e.taskId));
    expect(back[0]).toEqual(entries[0]);
  });

  it('writes queued while a transaction is in flight join the next one, in order', async () => {
    const c = counting(store);
    const journal = new TaskJournal({ store: c.store, onError: () => undefined });
    const prefix = `${name}-order`;
    const a = entry(prefix);
    const b = entry(prefix);
    journal.accepted(a);
    journal.accepted(b);
    const first = journal.committed();
    // A turn later: these form the next transaction, after the first one even if it is still in flight.
    await new Promise((r) => setImmediate(r));
    journal.running(a.taskId);
    journal.ended(a.taskId, { kind: 'failed', code: 'WORKER_RESET' }, 5);
    journal.running(b.taskId);
    await first;
    await journal.close();
    expect(c.batches.map((x) => x.map((o) => o.op))).toEqual([
      ['accepted', 'accepted'],
      ['running', 'ended', 'running'],
    ]);
    const back = await mine(prefix);
    expect(back.map((e) => [e.taskId, e.state, e.outcome, e.endedMs])).toEqual([
      [a.taskId, 'ended', { kind: 'failed', code: 'WORKER_RESET' }, 5],
      [b.taskId, 'running', undefined, undefined],
    ]);
  });

  it('counts the restarts of a task taken back', async () => {
    const journal = new TaskJournal({ store, onError: (err) => expect.fail(String(err)) });
    const prefix = `${name}-restarts`;
    const a = entry(prefix);
    journal.accepted(a);
    journal.restarted(a.taskId, 1);
    await journal.committed();
    journal.restarted(a.taskId, 2);
    await journal.close();
    expect((await mine(prefix)).map((e) => [e.state, e.restarts])).toEqual([['queued', 2]]);
  });

  it('a batch is all or nothing: one bad write and none of its rows are there', async () => {
    const prefix = `${name}-atomic`;
    const good = entry(prefix);
    const bad = entry(prefix, { tenant: null as unknown as string });
    await expect(
      store.writeTaskJournal([
        { op: 'accepted', entry: good },
        { op: 'accepted', entry: bad },
      ]),
    ).rejects.toThrow();
    expect(await mine(prefix)).toEqual([]);
    const errors: unknown[] = [];
    const journal = new TaskJournal({ store, onError: (err) => errors.push(err) });
    journal.accepted(entry(prefix, { tenant: null as unknown as string }));
    await journal.committed();
    expect(errors).toHaveLength(1);
  });

  it('a restart reads every task not ended and the newest ended ones; pruning keeps the newest', async () => {
    const prefix = `${name}-prune`;
    const all = Array.from({ length: 6 }, () => entry(prefix));
    await store.writeTaskJournal(all.map((e) => ({ op: 'accepted', entry: e })));
    // The four oldest end; the two newest stay open.
    await store.writeTaskJournal(
      all
        .slice(0, 4)
        .map((e, i) => ({ op: 'ended', taskId: e.taskId, outcome: { kind: 'completed' }, atMs: i })),
    );
    const ids = (es: TaskJournalEntry[]) =>
      es.filter((e) => e.taskId.startsWith(prefix)).map((e) => e.taskId);
    // A limit of 2 ended rows over the whole table: every open one is still there.
    const limited = await store.loadTaskJournal(2);
    expect(ids(limited)).toEqual(expect.arrayContaining([all[4]?.taskId, all[5]?.taskId]));
    expect(await store.pruneTaskJournal(1_000_000)).toBe(0);
    const before = (await store.loadTaskJournal(1_000_000)).filter((e) => e.state === 'ended').length;
    const removed = await store.pruneTaskJournal(2);
    expect(removed).toBe(before - 2);
    const left = await store.loadTaskJournal(1_000_000);
    expect(left.filter((e) => e.state === 'ended')).toHaveLength(2);
    expect(ids(left)).toEqual(expect.arrayContaining([all[4]?.taskId, all[5]?.taskId]));
  });
});

describe('recovery from the journal (SPEC §17.1), in process', () => {
  afterEach(closeCores);

  it('queued tasks are queued again with their deadlines, a passed one ends DEADLINE_UNMET, a running one WORKER_RESET', async () => {
    const store = new SqliteStore(join(dir, 'recover.db'));
    let now = 1_800_000_000_000;
    const clock = { now: () => now };
    // The first orchestrator "dies": once cut, its journal writes go nowhere.
    let cut = false;
    const journalA = new TaskJournal({
      store: { writeTaskJournal: (ops) => (cut ? Promise.resolve() : store.writeTaskJournal(ops)) },
      onError: () => undefined,
    });
    const a = core({ clock, extra: { journal: journalA } });
    const running = input({ maxTokens: 100 });
    const later = input({ deadlineMs: 3_600_000 });
    const soon = input({ deadlineMs: 30_000 });
    for (const t of [running, later, soon]) await a.orch.submit(LOCAL_PRINCIPAL, t, 'c');
    a.adapter.release(1);
    await settle();
    expect(a.orch.task(LOCAL_PRINCIPAL, running.taskId).state.kind).toBe('streaming');
    await journalA.close();
    cut = true;

    now += 60_000; // the restart took longer than `soon`'s deadline
    const journalB = new TaskJournal({ store, onError: (err) => expect.fail(String(err)) });
    const b = core({ clock, extra: { journal: journalB } });
    const recovery = b.orch.recover(await store.loadTaskJournal(1_000));
    expect(recovery).toMatchObject({ requeued: 1, reset: 1, expired: 1 });
    const last = (id: string) => b.orch.task(LOCAL_PRINCIPAL, id).log.since(0).at(-1)?.event;
    expect(last(running.taskId)).toMatchObject({ type: 'error', data: { code: 'WORKER_RESET' } });
    expect(last(soon.taskId)).toMatchObject({ type: 'error', data: { code: 'DEADLINE_UNMET' } });
    const requeued = b.orch.task(LOCAL_PRINCIPAL, later.taskId);
    expect(requeued.deadlineAtMs).toBe(1_800_000_000_000 + 3_600_000);
    expect(requeued.terminal).toBe(false);
    // An identical resubmission is answered from the journal, a different one refused.
    expect(await b.orch.submit(LOCAL_PRINCIPAL, soon, 'c')).toMatchObject({
      taskId: soon.taskId,
      ended: true,
    });
    await expect(b.orch.submit(LOCAL_PRINCIPAL, { ...later, prompt: 'x' }, 'c')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    // The endings are journaled: a second restart has nothing left to reset.
    await journalB.close();
    const states = new Map((await store.loadTaskJournal(1_000)).map((e) => [e.taskId, e.state]));
    expect([states.get(running.taskId), states.get(soon.taskId)]).toEqual(['ended', 'ended']);
    expect(['queued', 'running']).toContain(states.get(later.taskId));
    await closeCores();
    await journalB.close();
    await store.close();
  });

  it('each restart numbers the events of a task taken back above every id of its earlier runs', async () => {
    const store = new SqliteStore(join(dir, 'restarts.db'));
    const clock = { now: () => 1_800_000_000_000 };
    const queued = input({ deadlineMs: 3_600_000 });
    const firstSeqs: number[] = [];
    for (let run = 0; run < 3; run++) {
      let cut = false;
      const journal = new TaskJournal({
        store: { writeTaskJournal: (ops) => (cut ? Promise.resolve() : store.writeTaskJournal(ops)) },
        onError: (err) => expect.fail(String(err)),
      });
      // Later runs have no ready replica, so the task stays queued through every restart.
      const c = core({ clock, replicas: run === 0 ? 1 : 0, extra: { journal } });
      if (run === 0) {
        // One slot: the blocker runs, `queued` waits.
        await c.orch.submit(LOCAL_PRINCIPAL, input({ maxTokens: 100, deadlineMs: 3_600_000 }), 'c');
        await settle();
        await c.orch.submit(LOCAL_PRINCIPAL, queued, 'c');
      } else c.orch.recover(await store.loadTaskJournal(1_000));
      expect(c.orch.task(LOCAL_PRINCIPAL, queued.taskId).state.kind).toBe('queued');
      firstSeqs.push(c.orch.task(LOCAL_PRINCIPAL, queued.taskId).log.firstSeq);
      // The run dies without ending the task: only what was committed survives.
      await journal.close();
      cut = true;
      await closeCores();
    }
    expect(firstSeqs).toEqual([1, SEQ_EPOCH + 1, 2 * SEQ_EPOCH + 1]);
    expect((await store.loadTaskJournal(1_000)).find((e) => e.taskId === queued.taskId)?.restarts).toBe(2);
    await store.close();
  });

  it('a cancel is durable once committed() settles: a restart does not bring the task back', async () => {
    const store = new SqliteStore(join(dir, 'cancel.db'));
    const clock = { now: () => 1_800_000_000_000 };
    // A store whose writes wait at a gate: a slow disk, or a lock held by another connection.
    let gate: Promise<void> = Promise.resolve();
    let open: () => void = () => undefined;
    let cut = false;
    const journal = new TaskJournal({
      store: {
        writeTaskJournal: async (ops) => {
          await gate;
          if (!cut) await store.writeTaskJournal(ops);
        },
      },
      onError: (err) => expect.fail(String(err)),
    });
    const a = core({ clock, extra: { journal } });
    await a.orch.submit(LOCAL_PRINCIPAL, input({ maxTokens: 100, deadlineMs: 3_600_000 }), 'c');
    await settle();
    const queued = input({ deadlineMs: 3_600_000 });
    await a.orch.submit(LOCAL_PRINCIPAL, queued, 'c');
    gate = new Promise((r) => (open = r));
    a.orch.cancel(LOCAL_PRINCIPAL, queued.taskId);
    let durable = false;
    const committed = a.orch.committed().then(() => (durable = true));
    await settle();
    expect(durable).toBe(false);
    open();
    await committed;
    // The process dies now: what was committed is all a restart sees.
    cut = true;
    await closeCores();
    const b = core({ clock, replicas: 0 });
    b.orch.recover(await store.loadTaskJournal(1_000));
    expect(() => b.orch.task(LOCAL_PRINCIPAL, queued.taskId)).toThrow(/not found/);
    expect(await b.orch.submit(LOCAL_PRINCIPAL, queued, 'c')).toMatchObject({ ended: true });
    await closeCores();
    await store.close();
  });
});
