import type { Priority } from '../domain/types.js';

/** A queued task as the scheduler sees it. */
export interface QueueEntry {
  readonly id: string;
  readonly priority: Priority;
  /** Tenant the task is charged to (fair share within a class). */
  readonly tenant: string;
  /** Scheduling cost in tokens: prompt tokens not already cached + expected output. */
  readonly cost: number;
  /** Absolute deadline (ms on the scheduler's clock); orders work within fairness limits. */
  readonly deadlineAtMs: number;
}
