import type { Priority } from '../domain/types.js';
import { lowestPriorityNewestVictim } from './policies/lowest-priority-newest-victim.js';
import type { PreemptionCandidate } from './policies/victim-policy.js';

export type { PreemptionCandidate } from './policies/victim-policy.js';

/**
 * Hard preemption (SPEC §3.5) with the built-in `lowest-priority-newest` policy: the running task
 * to stop so an urgent `priority` task gets its slot — the most recently started task of the
 * lowest class below it, on a replica that can interrupt decode (the least work thrown away),
 * never a `determinism: strict` one (SPEC §17). Undefined when none qualifies.
 */
export function chooseHardVictim(
  running: readonly PreemptionCandidate[],
  priority: Priority,
): PreemptionCandidate | undefined {
  return lowestPriorityNewestVictim.choose(running, priority);
}
