import type { Clock } from '../domain/types.js';
import { emptyUsage, type SessionUsage } from './budget.js';

export interface Session {
  readonly id: string;
  readonly tenant: string;
  readonly poolId: string;
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
  readonly clock: Clock;
}

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

  /** A live session, or undefined when unknown or expired (expired ones are removed). */
  get(id: string): Session | undefined {
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    if (this.#expired(s)) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** The session a new turn belongs to: the live one, or a fresh one. Counts the turn. */
  beginTurn(id: string, tenant: string, poolId: string): Session {
    const now = this.#opts.clock.now();
    let s = this.get(id);
    if (s && (s.turns >= this.#opts.maxTurns(s.poolId) || s.poolId !== poolId)) {
      this.#sessions.delete(id);
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
      this.#sessions.set(id, s);
    }
    s.turns++;
    s.lastUsedAtMs = now;
    s.expiresAtMs = now + this.#opts.ttlMs(poolId);
    return s;
  }

  delete(id: string): Session | undefined {
    const s = this.get(id);
    this.#sessions.delete(id);
    return s;
  }

  /** Drop expired sessions; returns how many were removed. */
  sweep(): number {
    let n = 0;
    for (const [id, s] of this.#sessions) {
      if (this.#expired(s)) {
        this.#sessions.delete(id);
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
