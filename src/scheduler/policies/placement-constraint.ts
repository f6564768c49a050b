import type { TaskPlacement } from '../../domain/task.js';
import { hasFreeSlot, type ReplicaLoad } from './placement-policy.js';

/** Whether a placement lets the task run on `replicaId`. */
export function allows(placement: TaskPlacement | undefined, replicaId: string): boolean {
  return placement?.allow === undefined || placement.allow.includes(replicaId);
}

/**
 * The candidates a placement plugin's decision leaves to the placement policy (SPEC §10): only
 * the allowed replicas, not `avoid` (the replica the task just failed on) while another allowed
 * one is ready, and among those with a free slot only the best scored. The policy then breaks
 * ties as usual (load, session affinity, topology), so a plugin narrows the choice but never has
 * to know the load.
 */
export function constrainCandidates(
  candidates: readonly ReplicaLoad[],
  placement: TaskPlacement | undefined,
  avoid?: string,
): readonly ReplicaLoad[] {
  let allowed =
    placement?.allow === undefined ? candidates : candidates.filter((r) => allows(placement, r.id));
  if (avoid !== undefined) {
    const others = allowed.filter((r) => r.id !== avoid);
    if (others.length > 0) allowed = others;
  }
  const scores = placement?.scores;
  if (scores === undefined) return allowed;
  const free = allowed.filter(hasFreeSlot);
  if (free.length === 0) return free;
  const score = (r: ReplicaLoad): number => scores[r.id] ?? 0;
  const top = Math.max(...free.map(score));
  return free.filter((r) => score(r) === top);
}
