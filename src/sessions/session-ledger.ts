/**
 * Session budget accounting (SPEC §3.6, §17): what each session has used (finished turns) and
 * what its accepted tasks have reserved. A task reserves its worst case at admission (prompt +
 * `max_tokens`, their price, its expected wall time) and settles to what it really used when it
 * ends, so concurrent tasks of one session can never spend more than the budget between them.
 * The one place session usage is computed; admission, decode and the session view all read it.
 */
import type { Clock } from '../domain/types.js';
import { emptyUsage, hasSessionBudget, type BudgetLimits, type SessionUsage } from './budget.js';
import { sessionKey, type Session, type SessionStore } from './session-store.js';

/** Usage of finished turns kept durably, so budgets survive a restart. */
export interface DurableLedger {
  add(tenant: string, sessionId: string, usage: SessionUsage, atMs: number): Promise<void>;
  get(tenant: string, sessionId: string): Promise<SessionUsage | undefined>;
}

export interface SessionLedgerOptions {
  readonly sessions: SessionStore;
  readonly clock: Clock;
  readonly durable?: DurableLedger | undefined;
  /** A durable write failed (the in-memory usage is still right). */
  readonly onWriteError: (err: unknown, sessionId: string) => void;
}

const add = (a: SessionUsage, b: SessionUsage): SessionUsage => ({
  tokens: a.tokens + b.tokens,
  wallMs: a.wallMs + b.wallMs,
  cost: a.cost + b.cost,
});
const sub = (a: SessionUsage, b: SessionUsage): SessionUsage => ({
  tokens: a.tokens - b.tokens,
  wallMs: a.wallMs - b.wallMs,
  cost: a.cost - b.cost,
});

/** A session's reservations, with their running sum (a session may hold many tasks). */
interface Reservations {
  sum: SessionUsage;
  readonly byTask: Map<string, SessionUsage>;
}

export class SessionLedger {
  readonly #o: SessionLedgerOptions;
  /** Per session key: the reservations of its accepted, unfinished tasks by task id. */
  readonly #reserved = new Map<string, Reservations>();

  constructor(opts: SessionLedgerOptions) {
    this.#o = opts;
  }

  /**
   * Usage of the tenant's session's finished turns: the live session's, else (a session not in
   * memory, e.g. after a restart) the durable ledger's. Pools without budgets skip the read.
   */
  async committed(tenant: string, sessionId: string, limits: BudgetLimits): Promise<SessionUsage> {
    const own = this.#o.sessions.get(tenant, sessionId);
    if (own) return { ...own.usage };
    if (!hasSessionBudget(limits)) return emptyUsage();
    return (await this.#o.durable?.get(tenant, sessionId)) ?? emptyUsage();
  }

  /** A session began (first turn): it starts from the durable usage admission read. */
  adopt(session: Session, committed: SessionUsage): void {
    if (session.turns === 1) Object.assign(session.usage, committed);
  }

  /** Sum of the reservations of the session's accepted tasks, leaving out `exceptTaskId`. */
  reserved(tenant: string, sessionId: string, exceptTaskId?: string): SessionUsage {
    const rs = this.#reserved.get(sessionKey(tenant, sessionId));
    if (!rs) return emptyUsage();
    const own = exceptTaskId === undefined ? undefined : rs.byTask.get(exceptTaskId);
    return own ? sub(rs.sum, own) : { ...rs.sum };
  }

  /**
   * Reserves `usage` for a task of a pool with session budgets (others need no accounting); the
   * returned function undoes it (a later admission step refused).
   */
  reserve(
    tenant: string,
    sessionId: string,
    taskId: string,
    usage: SessionUsage,
    limits: BudgetLimits,
  ): () => void {
    if (!hasSessionBudget(limits)) return () => undefined;
    const key = sessionKey(tenant, sessionId);
    // A task holds one reservation: a second one replaces the first.
    this.#release(key, taskId);
    let rs = this.#reserved.get(key);
    if (!rs) this.#reserved.set(key, (rs = { sum: emptyUsage(), byTask: new Map() }));
    rs.byTask.set(taskId, { ...usage });
    rs.sum = add(rs.sum, usage);
    return () => this.#release(key, taskId);
  }

  /** Number of tasks holding a reservation (tests: no reservation outlives its task). */
  get reservations(): number {
    let n = 0;
    for (const rs of this.#reserved.values()) n += rs.byTask.size;
    return n;
  }

  /**
   * Usage as decode-time enforcement sees it: finished turns, the other tasks' reservations (they
   * may still use all of it) and what this task used so far.
   */
  inFlight(tenant: string, sessionId: string, taskId: string, own: SessionUsage): SessionUsage {
    const session = this.#o.sessions.get(tenant, sessionId);
    const base = session ? session.usage : emptyUsage();
    return add(add(base, this.reserved(tenant, sessionId, taskId)), own);
  }

  /** A task ended: its reservation becomes what it really used. */
  settle(tenant: string, sessionId: string, taskId: string, used: SessionUsage, limits: BudgetLimits): void {
    this.#release(sessionKey(tenant, sessionId), taskId);
    const session = this.#o.sessions.get(tenant, sessionId);
    if (session) Object.assign(session.usage, add(session.usage, used));
    // The durable ledger only serves budget checks: pools without session budgets skip the write.
    if (hasSessionBudget(limits))
      this.#o.durable
        ?.add(tenant, sessionId, used, this.#o.clock.now())
        .catch((err: unknown) => this.#o.onWriteError(err, sessionId));
  }

  #release(key: string, taskId: string): void {
    const rs = this.#reserved.get(key);
    const r = rs?.byTask.get(taskId);
    if (!rs || !r) return;
    rs.byTask.delete(taskId);
    rs.sum = sub(rs.sum, r);
    if (rs.byTask.size === 0) this.#reserved.delete(key);
  }
}
