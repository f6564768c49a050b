import { leastLoadedPlacement } from './least-loaded-placement.js';
import { hasFreeSlot, type PlacementPolicy, type PrefixMatch, type ReplicaLoad } from './placement-policy.js';

/**
 * Cached characters at which a prefix is worth half of its largest value: the value of a hit
 * grows with the prefill it saves and saturates, so a long system prompt outweighs a busy
 * replica while a one-block match (a common greeting) does not.
 */
const HALF_VALUE_CHARS = 1024;
/** Score lost per unit of utilization: a full replica costs a bit more than a 1k-character hit. */
const LOAD_WEIGHT = 0.5;
/** Score lost per unit of KV usage the engine reports: a new prompt there evicts others' KV. */
const KV_WEIGHT = 0.25;
/**
 * Score credited to the session's own replica beyond its prefix: the index holds the prompts
 * routed there, not the replies the engine generated, which the next turn resends. With
 * LOAD_WEIGHT it keeps a session on its replica until that replica is about 0.6 more utilized
 * than another holding the same prefix.
 */
const SESSION_PRIOR = 0.3;

/** Busy share of a replica's slots, counting what the engine reports as busy where it does. */
function utilization(r: ReplicaLoad): number {
  if (r.slotsTotal <= 0) return 1;
  return Math.min(1, Math.max(r.inFlight, r.engineBusy ?? 0) / r.slotsTotal);
}

function cachedChars(r: ReplicaLoad, p: PrefixMatch): number {
  const matched = (p.matched.get(r.id) ?? 0) * p.blockChars;
  return p.sessionOn.has(r.id) ? Math.max(matched, p.blocks * p.blockChars) : matched;
}

/** The placement score of a free replica for a prompt (higher is better). */
export function prefixScore(r: ReplicaLoad, p: PrefixMatch): number {
  const cached = cachedChars(r, p);
  const hit = cached / (cached + HALF_VALUE_CHARS) + (p.sessionOn.has(r.id) ? SESSION_PRIOR : 0);
  return hit - LOAD_WEIGHT * utilization(r) - KV_WEIGHT * (r.kvUsage ?? 0);
}

/**
 * `prefix-aware`: the free replica whose KV cache is estimated to hold the longest prefix of the
 * task's prompt (its session's replica counting as holding all of it), weighed against its load
 * (the engine's own busy slots where it reports them) and KV pressure. Ties go to the less
 * utilized, then fewer in-flight, topology cost, id. A task whose prompt no replica holds any of
 * is placed as `least-loaded` places it, so the policy changes nothing for unrelated prompts;
 * without prefix information (the context lacks it) it is `least-loaded`.
 */
export const prefixAwarePlacement: PlacementPolicy = {
  name: 'prefix-aware',
  readsPrefix: true,
  choose(candidates, ctx) {
    const p = ctx.prefix;
    if (p === undefined) return leastLoadedPlacement.choose(candidates, ctx);
    const free = candidates.filter(hasFreeSlot);
    if (free.length === 0) return undefined;
    if (!free.some((r) => cachedChars(r, p) > 0 || p.sessionOn.has(r.id)))
      // The session's KV is gone from every replica (restarted, evicted): no replica is warm.
      return leastLoadedPlacement.choose(candidates, { ...ctx, affinity: undefined });
    const scored = free.map((r) => ({ r, score: prefixScore(r, p), util: utilization(r) }));
    scored.sort(
      (a, b) =>
        b.score - a.score ||
        a.util - b.util ||
        a.r.inFlight - b.r.inFlight ||
        (a.r.topologyCost ?? 0) - (b.r.topologyCost ?? 0) ||
        (a.r.id < b.r.id ? -1 : 1),
    );
    return scored[0]?.r.id;
  },
};
