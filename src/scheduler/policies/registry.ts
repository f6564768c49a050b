/**
 * The built-in scheduling policies by name: what configuration selects and what a plugin falls
 * back to. Adding a policy means one file plus one line here; the conformance suite
 * (test/scheduler/policy-conformance.test.ts) runs every entry.
 */
import type { FullPolicy } from '../../domain/types.js';
import { dropLruPolicy } from './drop-lru-policy.js';
import type { FullQueuePolicy } from './full-queue-policy.js';
import { leastLoadedPlacement } from './least-loaded-placement.js';
import { lowestPriorityNewestVictim } from './lowest-priority-newest-victim.js';
import type { PlacementPolicy, PlacementPolicyName } from './placement-policy.js';
import { prefixAwarePlacement } from './prefix-aware-placement.js';
import { rejectPolicy } from './reject-policy.js';
import { shedLowPriorityPolicy } from './shed-low-priority-policy.js';
import type { VictimPolicy } from './victim-policy.js';

export const FULL_QUEUE_POLICIES = {
  reject: rejectPolicy,
  'drop-lru': dropLruPolicy,
  'shed-low-priority': shedLowPriorityPolicy,
} as const satisfies Record<FullPolicy, FullQueuePolicy>;

export const PLACEMENT_POLICIES = {
  'least-loaded': leastLoadedPlacement,
  'prefix-aware': prefixAwarePlacement,
} as const satisfies Record<PlacementPolicyName, PlacementPolicy>;
export type { PlacementPolicyName };

export const VICTIM_POLICIES = {
  'lowest-priority-newest': lowestPriorityNewestVictim,
} as const satisfies Record<string, VictimPolicy>;
export type VictimPolicyName = keyof typeof VICTIM_POLICIES;
