/** A replica as placement sees it: only Ready replicas of the task's replica set are passed in. */
export interface ReplicaLoad {
  readonly id: string;
  readonly slotsTotal: number;
  readonly inFlight: number;
  /** Topology cost (NUMA/PCIe hops); breaks ties between equally loaded replicas (ORCH-3013). */
  readonly topologyCost?: number;
}

/** What placement knows about the task beyond the replicas. */
export interface PlacementContext {
  /** The session's last replica (holds its KV). */
  readonly affinity: string | undefined;
  /**
   * Utilization (before placing) from which a warm replica no longer wins over a cooler one:
   * KV reuse is not worth sharing a busy replica (ORCH-3009).
   */
  readonly overloadRatio: number;
}

/**
 * Late binding (SPEC §4): which replica a task goes to at dispatch time. This is the seam for
 * placement policy plugins; the built-in `least-loaded` in {@link ./registry.ts} is the fallback.
 *
 * A policy returns the id of a candidate that has a free slot ({@link hasFreeSlot}), or undefined
 * exactly when none has one (the task stays queued). It may not return an id outside the
 * candidates, mutate its arguments, or depend on anything but them: the same replicas and context
 * give the same choice.
 */
export interface PlacementPolicy {
  readonly name: string;
  choose(candidates: readonly ReplicaLoad[], ctx: PlacementContext): string | undefined;
}

/** Whether a replica can take one more task now. */
export const hasFreeSlot = (r: ReplicaLoad): boolean => r.inFlight < r.slotsTotal;
