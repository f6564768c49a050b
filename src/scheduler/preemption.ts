import { PRIORITIES, type Priority } from '../domain/types.js';

export interface PreemptionCandidate {
  readonly taskId: string;
  readonly replicaId: string;
  readonly priority: Priority;
  readonly startedAtMs: number;
  /** Whether the replica's adapter declares `interruptible_decode`. */
  readonly interruptible: boolean;
}

/**
 * Hard preemption (SPEC §3.5): the running task to stop so an urgent `priority` task gets its
 * slot — the most recently started task of the lowest class below it, on a replica that can
 * interrupt decode (the least work thrown away). Undefined when none qualifies.
 */
export function chooseHardVictim(
  running: readonly PreemptionCandidate[],
  priority: Priority,
): PreemptionCandidate | undefined {
  const rank = (p: Priority) => PRIORITIES.indexOf(p);
  let best: PreemptionCandidate | undefined;
  for (const c of running) {
    if (!c.interruptible || rank(c.priority) <= rank(priority)) continue;
    if (
      best === undefined ||
      rank(c.priority) > rank(best.priority) ||
      (rank(c.priority) === rank(best.priority) && c.startedAtMs > best.startedAtMs)
    )
      best = c;
  }
  return best;
}
