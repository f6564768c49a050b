import { PRIORITIES, type FullPolicy, type Priority } from '../domain/types.js';
import { LinkedFifo } from './linked-fifo.js';

/** What the queue needs to know about an entry. */
export interface QueueEntry {
  readonly id: string;
  readonly priority: Priority;
  /** Scheduling cost in tokens (prompt + expected output); charged to the class on dispatch. */
  readonly cost: number;
}

export interface PoolQueueOptions {
  readonly capacity: number;
  readonly priorityCapacity: Readonly<Record<Priority, number>>;
  readonly fullPolicy: FullPolicy;
  readonly weights: Readonly<Record<Priority, number>>;
}

export type OfferResult<T> =
  | { readonly kind: 'enqueued'; readonly position: number; readonly evicted: readonly T[] }
  | { readonly kind: 'refused'; readonly reason: 'capacity' | 'priority-capacity' | 'no-lower-priority' };

const rank = (p: Priority): number => PRIORITIES.indexOf(p);

/**
 * One pool's bounded queue: a FIFO per priority class, a full-queue policy (SPEC §3.2), and
 * weighted fair dispatch across classes (stride scheduling over token cost, SPEC §3.3).
 */
export class PoolQueue<T extends QueueEntry> {
  readonly #opts: PoolQueueOptions;
  readonly #fifos = new Map<Priority, LinkedFifo<T>>(PRIORITIES.map((p) => [p, new LinkedFifo<T>()]));
  // Stride-scheduling pass values: the class with the smallest pass is served next.
  readonly #pass = new Map<Priority, number>(PRIORITIES.map((p) => [p, 0]));
  #virtualTime = 0;

  constructor(opts: PoolQueueOptions) {
    this.#opts = opts;
  }

  get size(): number {
    let n = 0;
    for (const f of this.#fifos.values()) n += f.size;
    return n;
  }

  get capacity(): number {
    return this.#opts.capacity;
  }

  get fullPolicy(): FullPolicy {
    return this.#opts.fullPolicy;
  }

  sizeOf(p: Priority): number {
    return this.#fifo(p).size;
  }

  has(id: string): boolean {
    return PRIORITIES.some((p) => this.#fifo(p).has(id));
  }

  /** Admit `entry` under the full-queue policy, evicting other entries when the policy says so. */
  offer(entry: T): OfferResult<T> {
    const evicted: T[] = [];
    const fifo = this.#fifo(entry.priority);
    const classCap = this.#opts.priorityCapacity[entry.priority];

    if (fifo.size >= classCap) {
      // The arrival's own class is full: only drop-lru can make room, by evicting that class's oldest.
      if (this.#opts.fullPolicy !== 'drop-lru' || classCap === 0)
        return { kind: 'refused', reason: 'priority-capacity' };
      const victim = fifo.shift();
      if (victim) evicted.push(victim);
    }
    if (this.size >= this.#opts.capacity) {
      const victim = this.#victimForCapacity(entry.priority);
      if (victim === 'refuse')
        return {
          kind: 'refused',
          reason: this.#opts.fullPolicy === 'shed-low-priority' ? 'no-lower-priority' : 'capacity',
        };
      evicted.push(victim);
    }

    if (fifo.size === 0) {
      // A class returning from idle must not bank credit from the time it was empty.
      this.#pass.set(entry.priority, Math.max(this.#pass.get(entry.priority) ?? 0, this.#virtualTime));
    }
    fifo.push(entry.id, entry);
    return { kind: 'enqueued', position: this.#estimate(entry.priority, fifo.size - 1), evicted };
  }

  #victimForCapacity(arrival: Priority): T | 'refuse' {
    switch (this.#opts.fullPolicy) {
      case 'reject':
        return 'refuse';
      case 'drop-lru': {
        // Oldest queued task, lowest class first; never a class above the arrival's own.
        for (const p of [...PRIORITIES].reverse()) {
          if (rank(p) < rank(arrival)) break;
          const v = this.#fifo(p).shift();
          if (v) return v;
        }
        return 'refuse';
      }
      case 'shed-low-priority': {
        // Newest strictly-lower-priority task: it has waited least, so shedding it wastes least.
        for (const p of [...PRIORITIES].reverse()) {
          if (rank(p) <= rank(arrival)) break;
          const v = this.#fifo(p).pop();
          if (v) return v;
        }
        return 'refuse';
      }
    }
  }

  /**
   * Entries ahead of `id` in dispatch order, estimated: all of its own class ahead of it plus the
   * share of other classes that weighted fairness will interleave before it.
   */
  positionOf(id: string): number | undefined {
    for (const p of PRIORITIES) {
      const fifo = this.#fifo(p);
      if (!fifo.has(id)) continue;
      let ahead = 0;
      for (const e of fifo.values()) {
        if (e.id === id) break;
        ahead++;
      }
      return this.#estimate(p, ahead);
    }
    return undefined;
  }

  #estimate(p: Priority, ahead: number): number {
    const w = this.#opts.weights[p];
    let others = 0;
    for (const q of PRIORITIES) {
      if (q === p) continue;
      const share = Math.floor(((ahead + 1) * this.#opts.weights[q]) / w);
      others += Math.min(this.#fifo(q).size, share);
    }
    return ahead + others;
  }

  remove(id: string): T | undefined {
    for (const p of PRIORITIES) {
      const v = this.#fifo(p).remove(id);
      if (v) return v;
    }
    return undefined;
  }

  /** The entry weighted fairness serves next, without removing it. */
  peekNext(): T | undefined {
    const p = this.#nextClass();
    return p === undefined ? undefined : this.#fifo(p).peekFirst();
  }

  /** Remove and return the entry weighted fairness serves next, charging its class. */
  takeNext(): T | undefined {
    const p = this.#nextClass();
    if (p === undefined) return undefined;
    const entry = this.#fifo(p).shift();
    if (!entry) return undefined;
    const pass = this.#pass.get(p) ?? 0;
    this.#virtualTime = pass;
    this.#pass.set(p, pass + Math.max(1, entry.cost) / this.#opts.weights[p]);
    return entry;
  }

  *entries(): IterableIterator<T> {
    for (const p of PRIORITIES) yield* this.#fifo(p).values();
  }

  #nextClass(): Priority | undefined {
    let best: Priority | undefined;
    for (const p of PRIORITIES) {
      if (this.#fifo(p).size === 0) continue;
      // Ties go to the higher class (PRIORITIES is ordered highest first).
      if (best === undefined || (this.#pass.get(p) ?? 0) < (this.#pass.get(best) ?? 0)) best = p;
    }
    return best;
  }

  #fifo(p: Priority): LinkedFifo<T> {
    const f = this.#fifos.get(p);
    if (!f) throw new Error(`unknown priority ${p}`);
    return f;
  }
}
