import type { TaskSpec, TaskState } from '../domain/task.js';
import { isTerminal } from '../domain/task.js';
import { EventLog } from '../tasks/event-log.js';

/** Why a running task's engine request was aborted; read by the dispatcher after the abort. */
export type AbortCause =
  | 'client-cancel'
  | 'wall-timeout'
  | 'idle-timeout'
  | 'shutdown'
  | 'preempted'
  | 'drain'
  | 'host-lost'
  | `budget-${'tokens' | 'wall_ms' | 'cost'}`;

/** One accepted task: its spec, state machine, event log and the controller that aborts it. */
export class TaskRecord {
  readonly spec: TaskSpec;
  readonly poolId: string;
  readonly log: EventLog;
  /** Replaced when a hard-preempted task is resumed (a fresh engine request). */
  abort = new AbortController();
  state: TaskState = { kind: 'queued' };
  abortCause: AbortCause | undefined;
  replicaId: string | undefined;
  kvWarm = false;
  dispatchedAtMs: number | undefined;
  firstTokenAtMs: number | undefined;
  finishedAtMs: number | undefined;
  tokensOut = 0;
  tokensIn = 0;
  /** Scheduling cost in tokens: uncached prompt + expected output (SPEC §3.3). */
  cost = 0;
  /** Text generated so far: a hard-preempted task resumes from prompt + text. */
  text = '';
  /** Times this task was hard-preempted (and later resumed). */
  preemptions = 0;
  /** Decode wall time of earlier runs of a preempted task (budgets). */
  priorRunMs = 0;

  constructor(spec: TaskSpec, poolId: string, maxEvents: number) {
    this.spec = spec;
    this.poolId = poolId;
    this.log = new EventLog(maxEvents);
  }

  get terminal(): boolean {
    return isTerminal(this.state);
  }

  /** Absolute time by which the task must finish. */
  get deadlineAtMs(): number {
    return this.spec.acceptedAtMs + this.spec.deadlineMs;
  }
}
