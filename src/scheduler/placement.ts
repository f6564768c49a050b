/** A replica as placement sees it: only Ready replicas of the task's replica set are passed in. */
export interface ReplicaLoad {
  readonly id: string;
  readonly slotsTotal: number;
  readonly inFlight: number;
  /** Topology cost (NUMA/PCIe hops); breaks ties between equally loaded replicas (ORCH-3013). */
  readonly topologyCost?: number;
}

export interface PlacementOptions {
  /** The session's last replica (holds its KV). */
  readonly affinity: string | undefined;
  /**
   * Utilization (before placing) from which a warm replica no longer wins over a cooler one:
   * KV reuse is not worth sharing a busy replica (ORCH-3009).
   */
  readonly overloadRatio: number;
}

const utilization = (r: ReplicaLoad, extra = 0): number =>
  r.slotsTotal <= 0 ? 1 : (r.inFlight + extra) / r.slotsTotal;

/**
 * Late binding (ORCH-3007..3010, ORCH-3019): pick the replica for a task at dispatch time.
 * Only replicas with a free slot qualify; the session's replica wins while it is not overloaded;
 * otherwise the least-utilized wins, ties by fewest in-flight, then topology cost, then id.
 */
export function chooseReplica(
  candidates: readonly ReplicaLoad[],
  opts: PlacementOptions,
): string | undefined {
  const free = candidates.filter((r) => r.inFlight < r.slotsTotal);
  if (free.length === 0) return undefined;
  const sorted = [...free].sort(
    (a, b) =>
      utilization(a) - utilization(b) ||
      a.inFlight - b.inFlight ||
      (a.topologyCost ?? 0) - (b.topologyCost ?? 0) ||
      (a.id < b.id ? -1 : 1),
  );
  const best = sorted[0];
  if (opts.affinity !== undefined) {
    const warm = free.find((r) => r.id === opts.affinity);
    if (warm && (utilization(warm) < opts.overloadRatio || warm === best)) return warm.id;
  }
  return best?.id;
}
