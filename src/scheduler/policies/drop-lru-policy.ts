import { classesFromLowest, type FullQueuePolicy } from './full-queue-policy.js';

/**
 * `drop-lru` (SPEC §3.2): evict the longest-waiting task, batch before interactive, to admit the
 * arrival; refuse only when nothing at or below the arrival's class is queued.
 */
export const dropLruPolicy: FullQueuePolicy = {
  name: 'drop-lru',
  whenClassFull(arrival, queue) {
    const victim =
      queue.capacityOf(arrival.priority) > 0 ? queue.victimIn(arrival.priority, 'oldest') : undefined;
    return victim ? { kind: 'evict', victim } : { kind: 'refuse', reason: 'priority-capacity' };
  },
  whenQueueFull(arrival, queue) {
    // Never a class above the arrival's own: a batch arrival does not push out interactive work.
    for (const p of classesFromLowest(arrival.priority, true)) {
      const victim = queue.victimIn(p, 'oldest');
      if (victim) return { kind: 'evict', victim };
    }
    return { kind: 'refuse', reason: 'capacity' };
  },
};
