/** A replica as placement sees it: only Ready replicas of the task's replica set are passed in. */
export interface ReplicaLoad {
  readonly id: string;
  readonly slotsTotal: number;
  readonly inFlight: number;
  /** Topology cost (NUMA/PCIe hops); breaks ties between equally loaded replicas (ORCH-3013). */
  readonly topologyCost?: number;
  /** KV-cache usage (0..1) as the engine last reported it, where it tells and recently. */
  readonly kvUsage?: number | undefined;
  /**
   * Slots busy as the engine itself last reported them, where it exposes slot state; may exceed
   * `inFlight` (requests the orchestrator does not count, e.g. aborted ones still decoding).
   */
  readonly engineBusy?: number | undefined;
}

/**
 * How much of the task's prompt each replica is estimated to hold in its KV cache (prefix-aware
 * placement). Computed from the pool's per-replica prefix index once per placement.
 */
export interface PrefixMatch {
  /** Full blocks of the task's prompt. */
  readonly blocks: number;
  /** Characters per block. */
  readonly blockChars: number;
  /** Leading blocks of the prompt each replica holds, by replica id (absent: none). */
  readonly matched: ReadonlyMap<string, number>;
  /** Replicas whose engine still holds the task's session (served it since its last restart). */
  readonly sessionOn: ReadonlySet<string>;
  /**
   * A stable name of the prompt's leading text (the hash of its first blocks), the same for
   * every prompt that shares them: what a policy spreads prompts over replicas by. Absent for a
   * prompt shorter than a block.
   */
  readonly key?: string | undefined;
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
  /** The prompt's estimated cache state per replica; absent where nobody computed it. */
  readonly prefix?: PrefixMatch | undefined;
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
  /** The policy reads `ctx.prefix`: the dispatcher computes it only for policies that do. */
  readonly readsPrefix?: boolean;
  choose(candidates: readonly ReplicaLoad[], ctx: PlacementContext): string | undefined;
}

/** Whether a replica can take one more task now. */
export const hasFreeSlot = (r: ReplicaLoad): boolean => r.inFlight < r.slotsTotal;

/** Placement policies configuration can select (`scheduling.placement`). */
export const PLACEMENT_POLICY_NAMES = ['least-loaded', 'prefix-aware'] as const;
export type PlacementPolicyName = (typeof PLACEMENT_POLICY_NAMES)[number];
