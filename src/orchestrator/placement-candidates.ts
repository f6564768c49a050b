/**
 * What the placement hook (SPEC §10) is shown of a task's replica set: every replica of every
 * member pool, ready or not, with the load, devices and host it has now.
 */
import type { TaskPlacement } from '../domain/task.js';
import type { PlacementCandidate } from '../plugins/plugin-host.js';
import { allows } from '../scheduler/policies/placement-constraint.js';
import type { PoolRuntime } from './pool-runtime.js';

/** The replicas of `members` (configuration order), `sessionReplica` marked as the warm one. */
export function placementCandidates(
  members: readonly PoolRuntime[],
  sessionReplica: string | undefined,
): PlacementCandidate[] {
  const out: PlacementCandidate[] = [];
  for (const pool of members) {
    const loads = new Map(pool.loads().map((l) => [l.id, l]));
    pool.supervisor.replicas().forEach((r, i) => {
      const configured = pool.config.replicaDevices[i] ?? pool.config.devices;
      const devices = r.gpu?.devices ?? (configured === 'cpu' ? [] : configured);
      out.push({
        id: r.id,
        poolId: pool.id,
        host: r.gpu?.host ?? 'local',
        ready: loads.has(r.id),
        slotsTotal: pool.slotsOf(r),
        inFlight: pool.inFlight.get(r.id) ?? 0,
        queueDepth: pool.queue.size,
        devices: devices.map(String),
        topologyCost: loads.get(r.id)?.topologyCost ?? 0,
        session: r.id === sessionReplica,
      });
    });
  }
  return out;
}

/**
 * The member a placed task is queued on: `chosen` when its placement allows one of its
 * replicas, else the member holding an allowed replica that takes work and expects to start
 * it soonest; undefined when no member that takes work holds one.
 */
export function memberFor(
  chosen: PoolRuntime,
  members: readonly PoolRuntime[],
  placement: TaskPlacement,
  takesWork: (p: PoolRuntime) => boolean,
): PoolRuntime | undefined {
  const holds = (p: PoolRuntime): boolean => p.replicaIds().some((id) => allows(placement, id));
  if (holds(chosen)) return chosen;
  let best: PoolRuntime | undefined;
  for (const p of members) {
    if (p === chosen || !takesWork(p) || !holds(p)) continue;
    if (best === undefined || p.predictStartMs(p.queue.size) < best.predictStartMs(best.queue.size)) best = p;
  }
  return best;
}
