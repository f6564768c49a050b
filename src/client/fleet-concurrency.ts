/**
 * Safe client concurrency for agents that share a fleet (OC-CLI-2401): start from the fleet's
 * capacity in `/v1/replicasets` (free + total slots, this client's share of them), then adapt
 * to 429 feedback — halve on backpressure and pause for the server's backoff, grow by one per
 * window of successes — so many agents converge on a load the fleet can take.
 */
import { OrchHttpError } from './orch-http-error.js';
import type { OrchClient } from './orch-client.js';
import { sleep } from './retry-policy.js';
import type { ReplicaSets } from './types.js';

export interface FleetConcurrencyOptions {
  /** This client's fraction of the fleet, e.g. 1/agents (default 1). */
  readonly share?: number;
  /** Only replica sets whose engine or model matches count (default all). */
  readonly engine?: string;
  readonly modelId?: string;
  /** Queued work allowed per slot on top of running work (default 1: one waiting per slot). */
  readonly queuePerSlot?: number;
  /** Floor and ceiling of the limit (default 1 and 4096). */
  readonly min?: number;
  readonly max?: number;
}

/** Derives the starting limit from replica-set capacity. */
export function capacityLimit(sets: ReplicaSets, o: FleetConcurrencyOptions = {}): number {
  const slots = sets.replica_sets
    .filter(
      (s) =>
        (o.engine === undefined || s.engine === o.engine) &&
        (o.modelId === undefined || s.model_id === o.modelId),
    )
    .reduce((sum, s) => sum + (s.slots_total ?? 0), 0);
  const raw = Math.floor(slots * (1 + (o.queuePerSlot ?? 1)) * (o.share ?? 1));
  return Math.min(o.max ?? 4096, Math.max(o.min ?? 1, raw));
}

export class FleetConcurrency {
  #limit: number;
  #ceiling: number;
  #inFlight = 0;
  #successes = 0;
  #pausedUntil = 0;
  readonly #waiters: (() => void)[] = [];
  readonly #o: FleetConcurrencyOptions;

  constructor(initialLimit: number, o: FleetConcurrencyOptions = {}) {
    this.#o = o;
    this.#ceiling = Math.max(1, initialLimit);
    this.#limit = this.#ceiling;
  }

  /** A limiter sized from the fleet's current capacity. */
  static async fromFleet(client: OrchClient, o: FleetConcurrencyOptions = {}): Promise<FleetConcurrency> {
    return new FleetConcurrency(capacityLimit(await client.replicaSets(), o), o);
  }

  /** Re-reads capacity (e.g. after the fleet grew); the current limit never exceeds it. */
  async refresh(client: OrchClient): Promise<void> {
    this.#ceiling = capacityLimit(await client.replicaSets(), this.#o);
    this.#limit = Math.min(this.#limit, this.#ceiling);
    this.#wake();
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs `fn` once a slot is free; 429 answers shrink the limit and pause new work. */
  async run<R>(fn: () => Promise<R>): Promise<R> {
    await this.#acquire();
    try {
      const r = await fn();
      this.onSuccess();
      return r;
    } catch (err) {
      if (err instanceof OrchHttpError && err.status === 429)
        this.onBackpressure(err.envelope?.retry_after_ms ?? 0);
      throw err;
    } finally {
      this.#inFlight--;
      this.#wake();
    }
  }

  /** Additive increase: one more slot after a full window of successes. */
  onSuccess(): void {
    if (++this.#successes >= this.#limit && this.#limit < this.#ceiling) {
      this.#limit++;
      this.#successes = 0;
    }
  }

  /** Multiplicative decrease, and no new work until the server's backoff has passed. */
  onBackpressure(backoffMs: number): void {
    this.#limit = Math.max(this.#o.min ?? 1, Math.floor(this.#limit / 2));
    this.#successes = 0;
    this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + backoffMs);
  }

  async #acquire(): Promise<void> {
    for (;;) {
      const pause = this.#pausedUntil - Date.now();
      if (pause > 0) await sleep(pause);
      else if (this.#inFlight < this.#limit) {
        this.#inFlight++;
        return;
      } else await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#inFlight < this.#limit) this.#waiters.shift()?.();
    // Waiters beyond the limit stay queued; they are woken as slots free up.
  }
}
