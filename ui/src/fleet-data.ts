/** Replica sets and the health of every pool in them: what Fleet, Queues and Operations read. */
import type { Api, PoolHealth, ReplicaSet } from './api.js';
import { usePoll, type Polled } from './hooks.js';

export interface FleetData {
  readonly sets: readonly ReplicaSet[];
  readonly pools: readonly PoolHealth[];
}

export function useFleet(api: Api, everyMs = 2_000): Polled<FleetData> {
  return usePoll(async () => {
    const { replica_sets: sets } = await api.replicaSets();
    const ids = [...new Set(sets.flatMap((s) => s.pools))].sort();
    const pools = await Promise.all(ids.map((id) => api.poolHealth(id)));
    return { sets, pools };
  }, everyMs);
}
