import { classesFromLowest, type FullQueuePolicy } from './full-queue-policy.js';

/**
 * `shed-low-priority` (SPEC §3.2): evict queued lower-priority work for a higher-priority arrival;
 * an arrival with nothing strictly below it, or whose own class is full, is refused.
 */
export const shedLowPriorityPolicy: FullQueuePolicy = {
  name: 'shed-low-priority',
  // Shedding is across classes only: within a class, arrival order decides who waits.
  whenClassFull: () => ({ kind: 'refuse', reason: 'priority-capacity' }),
  whenQueueFull(arrival, queue) {
    for (const p of classesFromLowest(arrival.priority, false)) {
      // The newest has waited least, so shedding it throws away the least waiting time.
      const victim = queue.victimIn(p, 'newest');
      if (victim) return { kind: 'evict', victim };
    }
    return { kind: 'refuse', reason: 'no-lower-priority' };
  },
};
