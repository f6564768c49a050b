import { hasFreeSlot, type PlacementPolicy, type ReplicaLoad } from './placement-policy.js';

const utilization = (r: ReplicaLoad): number => (r.slotsTotal <= 0 ? 1 : r.inFlight / r.slotsTotal);

/**
 * `least-loaded` (ORCH-3007..3010, ORCH-3019): the session's replica wins while it is not
 * overloaded; otherwise the least-utilized wins, ties by fewest in-flight, then topology cost,
 * then id, so the choice does not depend on the order replicas are listed in.
 */
export const leastLoadedPlacement: PlacementPolicy = {
  name: 'least-loaded',
  choose(candidates, ctx) {
    const free = candidates.filter(hasFreeSlot);
    if (free.length === 0) return undefined;
    const sorted = [...free].sort(
      (a, b) =>
        utilization(a) - utilization(b) ||
        a.inFlight - b.inFlight ||
        (a.topologyCost ?? 0) - (b.topologyCost ?? 0) ||
        (a.id < b.id ? -1 : 1),
    );
    const best = sorted[0];
    if (ctx.affinity !== undefined) {
      const warm = free.find((r) => r.id === ctx.affinity);
      if (warm && (utilization(warm) < ctx.overloadRatio || warm === best)) return warm.id;
    }
    return best?.id;
  },
};
