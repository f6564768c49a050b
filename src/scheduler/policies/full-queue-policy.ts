import { PRIORITIES, type Priority } from '../../domain/types.js';
import type { QueueEntry } from '../queue-entry.js';

/** Why an arrival was refused: its class is full, the queue is full, or nothing below it can go. */
export type RefusalReason = 'capacity' | 'priority-capacity' | 'no-lower-priority';

/** Which end of a class's arrival order a policy evicts from. */
export type QueueEnd = 'oldest' | 'newest';

/** A full-queue policy's answer for one step of an offer. */
export type FullQueueDecision<T> =
  | { readonly kind: 'evict'; readonly victim: T }
  | { readonly kind: 'refuse'; readonly reason: RefusalReason };

/**
 * The queue as a full-queue policy sees it while one offer is planned: read-only, and already
 * without the entries this offer will remove (ids the caller frees, victims chosen in an earlier
 * step), so sizes say what is left and no accessor returns an entry that is going anyway.
 *
 * It is valid only during the policy call that received it: it reads the live queue.
 */
export interface FullQueueView<T extends QueueEntry> {
  /** Entries the whole queue holds at most. */
  readonly capacity: number;
  /** Entries that stay queued. */
  readonly size: number;
  /** Entries class `p` holds at most (0: the class admits nothing). */
  capacityOf(p: Priority): number;
  /** Entries of class `p` that stay queued. */
  sizeOf(p: Priority): number;
  /** The longest-waiting entry of class `p`. O(tenants of the class). */
  oldest(p: Priority): T | undefined;
  /** The most recent arrival of class `p`. O(tenants of the class). */
  newest(p: Priority): T | undefined;
  /**
   * The entry of class `p` to evict from `end`, ETA-aware (SPEC §3.4): an entry that cannot meet
   * its deadline any more goes before a live one, else the class's oldest (newest). The queue
   * answers this rather than the policy because it knows its layout: doomed tenant heads (tails)
   * are found in O(tenants), and only when none is doomed is the class scanned for one.
   */
  victimIn(p: Priority, end: QueueEnd): T | undefined;
  /** Whether `entry` can no longer meet its deadline (false when the queue has no predicate). */
  isDoomed(entry: T): boolean;
}

/**
 * What a pool queue does when an arrival does not fit (SPEC §3.2). This is the seam for
 * full-queue policy plugins; the built-ins in {@link ./registry.ts} are the fallback.
 *
 * An offer asks the policy at most twice, in order, each time over a view that no longer holds
 * what was already decided: {@link whenClassFull} when the arrival's class is at its capacity,
 * then {@link whenQueueFull} when the whole queue is. Each answer evicts one entry or refuses the
 * arrival; nothing is removed until every step has agreed, so a refusal changes nothing.
 *
 * A policy may read the arrival and the view. It may not mutate either, keep the view past the
 * call, or depend on anything but its arguments: the same queue and arrival give the same answer.
 * The victim must be an entry the view returned. The queue rejects (throws on) a victim that is
 * not queued or already leaving, one of a higher class than the arrival, and in the class step one
 * outside the arrival's class (evicting it would not make room there).
 */
export interface FullQueuePolicy {
  /** The name configuration and metrics use for this policy. */
  readonly name: string;
  /** The arrival's class is full: evict one entry of that class, or refuse. */
  whenClassFull<T extends QueueEntry>(arrival: QueueEntry, queue: FullQueueView<T>): FullQueueDecision<T>;
  /** The whole queue is full: evict one entry of the arrival's class or a lower one, or refuse. */
  whenQueueFull<T extends QueueEntry>(arrival: QueueEntry, queue: FullQueueView<T>): FullQueueDecision<T>;
}

/** Classes at or (with `orEqual` false) strictly below `p`, lowest first: the order shedding walks. */
export function classesFromLowest(p: Priority, orEqual: boolean): readonly Priority[] {
  const at = PRIORITIES.indexOf(p);
  return PRIORITIES.filter((_, i) => (orEqual ? i >= at : i > at)).reverse();
}
