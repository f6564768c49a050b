import { leastLoadedPlacement } from './least-loaded-placement.js';
import { hasFreeSlot, type PlacementPolicy, type PrefixMatch, type ReplicaLoad } from './placement-policy.js';

/**
 * Load (utilization points) by which a replica may exceed the least-loaded free one and still
 * be chosen for its cache (or as the prompt's home): half of a replica's slots. A hit saves a
 * prefill of thousands of tokens, while one more sequence in a continuous batch slows decode by
 * a few percent; beyond the bound, a replica's queue would cost more than the prefill it saves.
 */
export const LOAD_BOUND = 0.75;
/** Load counted per unit of KV usage the engine reports: a new prompt there evicts others' KV. */
const KV_WEIGHT = 0.25;
/**
 * Cached characters from which a match outweighs the prompt's home: about 512 tokens, or half of
 * the prompt if it is shorter. A shared chat preamble of a block or two is not worth breaking
 * the partition of prompts over replicas for.
 */
const MIN_MATCH_CHARS = 2048;

/**
 * Busy share of a replica's slots, counting what the engine reports as running plus waiting
 * where it does (above 1 while the engine queues requests the orchestrator does not count).
 */
function utilization(r: ReplicaLoad): number {
  if (r.slotsTotal <= 0) return Infinity;
  return Math.max(r.inFlight, r.engineBusy ?? 0) / r.slotsTotal;
}

/** The load the bound compares: utilization plus a share of KV pressure. */
export function replicaLoad(r: ReplicaLoad): number {
  return utilization(r) + KV_WEIGHT * (r.kvUsage ?? 0);
}

/** Characters of the prompt a replica is estimated to hold; its session's replica holds all. */
function cachedChars(r: ReplicaLoad, p: PrefixMatch): number {
  const matched = (p.matched.get(r.id) ?? 0) * p.blockChars;
  return p.sessionOn.has(r.id) ? Math.max(matched, p.blocks * p.blockChars) : matched;
}

/**
 * Rendezvous (highest random weight) hashing: each prompt key ranks every replica by a hash of
 * (key, replica), so a prompt's order of homes is stable, independent of the listing order, and
 * moves only the prompts of a replica that leaves or joins. FNV-1a, then a murmur3 finalizer to
 * spread the last characters' bits.
 */
export function rendezvousWeight(key: string, replicaId: string): number {
  let h = 0x811c9dc5;
  const s = `${key}\u0000${replicaId}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * `prefix-aware` (bounded-load, cache-aware placement, as SGLang's router and llm-d's prefix
 * scorer do it): among the free replicas whose load (utilization, the engine's own running and
 * waiting requests where it reports them, KV pressure) is within {@link LOAD_BOUND} of the
 * least-loaded one's:
 * 1. the one estimated to hold the longest prefix of the task's prompt (its session's replica
 *    counting as holding all of it), if that is worth it ({@link MIN_MATCH_CHARS});
 * 2. else the prompt's home: the first of them in the rendezvous order of the prompt's key, so
 *    every prompt sharing a leading text goes to the same replica, spills in the same order when
 *    that one is loaded, and each replica's cache holds a stable subset of the prompts instead
 *    of whatever was routed there last.
 *
 * Ties go to the rendezvous order, then load and id. Prompts shorter than a block (no key) and
 * contexts without prefix information are placed as `least-loaded` places them.
 */
export const prefixAwarePlacement: PlacementPolicy = {
  name: 'prefix-aware',
  readsPrefix: true,
  choose(candidates, ctx) {
    const p = ctx.prefix;
    if (p === undefined || p.key === undefined || p.blocks === 0)
      return leastLoadedPlacement.choose(candidates, ctx);
    const key = p.key;
    const free = candidates.filter(hasFreeSlot);
    if (free.length === 0) return undefined;
    const scored = free.map((r) => ({
      r,
      load: replicaLoad(r),
      cached: cachedChars(r, p),
      rank: rendezvousWeight(key, r.id),
    }));
    const least = Math.min(...scored.map((s) => s.load));
    const eligible = scored.filter((s) => s.load <= least + LOAD_BOUND);
    const worth = Math.min(MIN_MATCH_CHARS, (p.blocks * p.blockChars) / 2);
    const longest = Math.max(...eligible.map((s) => s.cached));
    const pool = longest >= worth && longest > 0 ? eligible.filter((s) => s.cached === longest) : eligible;
    pool.sort((a, b) => b.rank - a.rank || a.load - b.load || (a.r.id < b.r.id ? -1 : 1));
    return pool[0]?.r.id;
  },
};
