import type { Clock } from '../domain/types.js';
import { emptyUsage, type SessionUsage } from './budget.js';

export interface Session {
  readonly id: string;
  readonly tenant: string;
  /** The member pool of the session's latest turn (its replica set is the session's). */
  poolId: string;
  readonly createdAtMs: number;
  lastUsedAtMs: number;
  expiresAtMs: number;
  turns: number;
  /** Replica that holds the session's KV (from its last completed turn). */
  lastReplicaId: string | undefined;
  /** Engine slot on that replica, when the engine reports it. */
  lastSlotId: number | undefined;
  /** Tokens resident in that slot after the last turn (prompt + output). */
  kvTokens: number;
  /** Incarnation of the replica process when KV was written; a restart makes the KV cold. */
  replicaEpoch: number | undefined;
  /** Budget usage of finished turns (SPEC §3.6). */
  readonly usage: SessionUsage;
}

export interface SessionStoreOptions {
  readonly ttlMs: (poolId: string) => number;
  readonly maxTurns: (poolId: string) => number;
  /** Whether two pools are members of one replica set (a session may move between them). */
  readonly sameSet?: (a: string, b: string) => boolean;
  readonly clock: Clock;
}

/**
 * The key of a session everywhere (store, affinity, budgets, ledger): a session belongs to the
 * tenant that created it, so another tenant using the same `session_id` gets a separate session
 * and learns nothing of the owner's (SPEC §17, §2.4).
 */
export const sessionKey = (tenant: string, sessionId: string): string => `${tenant}\u0000${sessionId}`;

/**
 * Short-lived sessions (SPEC §2.4): a TTL refreshed on each turn and a turn limit. An expired or
 * used-up session vanishes; the next task with that id starts a fresh, cold session.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #opts: SessionStoreOptions;

  constructor(opts: SessionStoreOptions) {
    this.#opts = opts;
  }

  /** The sessions held now (expired ones may linger until the next sweep). */
  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** The tenant's live session, or undefined when unknown or expired (expired ones are removed). */
  get(tenant: string, id: string): Session | undefined {
    const key = sessionKey(tenant, id);
    const s = this.#sessions.get(key);
    if (!s) return undefined;
    if (this.#expired(s)) {
      this.#sessions.delete(key);
      return undefined;
    }
    return s;
  }

  /** The session a new turn belongs to: the tenant's live one, or a fresh one. Counts the turn. */
  beginTurn(tenant: string, id: string, poolId: string): Session {
    const now = this.#opts.clock.now();
    const key = sessionKey(tenant, id);
    let s = this.get(tenant, id);
    const sameSet = this.#opts.sameSet ?? ((a: string, b: string) => a === b);
    if (s && (s.turns >= this.#opts.maxTurns(s.poolId) || !sameSet(s.poolId, poolId))) {
      this.#sessions.delete(key);
      s = undefined;
    }
    if (!s) {
      s = {
        id,
        tenant,
        poolId,
        createdAtMs: now,
        lastUsedAtMs: now,
        expiresAtMs: now + this.#opts.ttlMs(poolId),
        turns: 0,
        lastReplicaId: undefined,
        lastSlotId: undefined,
        kvTokens: 0,
        replicaEpoch: undefined,
        usage: emptyUsage(),
      };
      this.#sessions.set(key, s);
    }
    s.turns++;
    s.poolId = poolId;
    s.lastUsedAtMs = now;
    s.expiresAtMs = now + this.#opts.ttlMs(poolId);
    return s;
  }

  delete(tenant: string, id: string): Session | undefined {
    const s = this.get(tenant, id);
    this.#sessions.delete(sessionKey(tenant, id));
    return s;
  }

  /** Drop expired sessions; returns how many were removed. */
  sweep(): number {
    let n = 0;
    for (const [key, s] of this.#sessions) {
      if (this.#expired(s)) {
        this.#sessions.delete(key);
        n++;
      }
    }
    return n;
  }

  ttlRemainingMs(s: Session): number {
    return Math.max(0, s.expiresAtMs - this.#opts.clock.now());
  }

  get size(): number {
    return this.#sessions.size;
  }

  #expired(s: Session): boolean {
    return this.#opts.clock.now() >= s.expiresAtMs;
  }
}
