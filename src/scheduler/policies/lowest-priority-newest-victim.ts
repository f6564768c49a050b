import { PRIORITIES, type Priority } from '../../domain/types.js';
import { isHardPreemptible, type PreemptionCandidate, type VictimPolicy } from './victim-policy.js';

const rank = (p: Priority): number => PRIORITIES.indexOf(p);

/**
 * `lowest-priority-newest`: the most recently started task of the lowest class below the arrival —
 * the least work thrown away, taken from the work that matters least.
 */
export const lowestPriorityNewestVictim: VictimPolicy = {
  name: 'lowest-priority-newest',
  choose(running, priority) {
    let best: PreemptionCandidate | undefined;
    for (const c of running) {
      if (!isHardPreemptible(c, priority)) continue;
      if (
        best === undefined ||
        rank(c.priority) > rank(best.priority) ||
        (rank(c.priority) === rank(best.priority) && c.startedAtMs > best.startedAtMs)
      )
        best = c;
    }
    return best;
  },
};
