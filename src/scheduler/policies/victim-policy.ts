import { PRIORITIES, type Determinism, type Priority } from '../../domain/types.js';

/** A running task as hard preemption sees it. */
export interface PreemptionCandidate {
  readonly taskId: string;
  readonly replicaId: string;
  readonly priority: Priority;
  readonly startedAtMs: number;
  /** Whether the replica's adapter declares `interruptible_decode`. */
  readonly interruptible: boolean;
  /** A `strict` task is never stopped: its resumed stream would not be byte-identical (SPEC §17). */
  readonly determinism: Determinism;
}

/**
 * Hard preemption (SPEC §3.5, §17): which running task to stop so an urgent task of `priority`
 * gets its slot. This is the seam for victim policy plugins; the built-in
 * `lowest-priority-newest` in {@link ./registry.ts} is the fallback.
 *
 * A policy returns one of `running` that {@link isHardPreemptible} accepts, or undefined exactly
 * when none qualifies. It may not return anything else, mutate its arguments, or depend on
 * anything but them.
 */
export interface VictimPolicy {
  readonly name: string;
  choose(running: readonly PreemptionCandidate[], priority: Priority): PreemptionCandidate | undefined;
}

/**
 * Whether `c` may be stopped for an arrival of `priority`: its replica can interrupt decode, it is
 * of a strictly lower class, and it does not promise a deterministic stream.
 */
export function isHardPreemptible(c: PreemptionCandidate, priority: Priority): boolean {
  return (
    c.interruptible &&
    c.determinism !== 'strict' &&
    PRIORITIES.indexOf(c.priority) > PRIORITIES.indexOf(priority)
  );
}
