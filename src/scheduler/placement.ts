import { leastLoadedPlacement } from './policies/least-loaded-placement.js';
import type { PlacementContext, ReplicaLoad } from './policies/placement-policy.js';

export type { ReplicaLoad } from './policies/placement-policy.js';
export type PlacementOptions = PlacementContext;

/**
 * Late binding (ORCH-3007..3010, ORCH-3019): pick the replica for a task at dispatch time with
 * the built-in `least-loaded` policy. Only replicas with a free slot qualify; the session's
 * replica wins while it is not overloaded; otherwise the least-utilized wins, ties by fewest
 * in-flight, then topology cost, then id.
 */
export function chooseReplica(
  candidates: readonly ReplicaLoad[],
  opts: PlacementOptions,
): string | undefined {
  return leastLoadedPlacement.choose(candidates, opts);
}
