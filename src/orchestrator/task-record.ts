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

/** A task's event log as readers see it: they replay and subscribe, never append. */
export type ReadonlyEventLog = Omit<EventLog, 'append'>;

/**
 * A task as everything but its lifecycle sees it (HTTP, the SSE relay, observers, predictions):
 * read-only. Only `TaskLifecycle` changes a task's state or appends to its event log.
 */
export interface TaskView {
  readonly spec: TaskSpec;
  readonly poolId: string;
  readonly log: ReadonlyEventLog;
  readonly state: TaskState;
  readonly terminal: boolean;
  readonly replicaId: string | undefined;
  readonly kvWarm: boolean;
  readonly dispatchedAtMs: number | undefined;
  readonly firstTokenAtMs: number | undefined;
  readonly finishedAtMs: number | undefined;
  readonly tokensOut: number;
  readonly tokensIn: number;
  readonly cost: number;
  readonly preemptions: number;
  /** Times the task failed before its first token and was dispatched again elsewhere. */
  readonly redispatches: number;
  readonly priorRunMs: number;
  readonly deadlineAtMs: number;
}

/**
 * One accepted task: its spec, state machine, event log and the controller that aborts it. The
 * mutable fields are written by `TaskLifecycle` (state, log, progress) and by the dispatcher
 * (abort control) only — the lint configuration forbids writes elsewhere.
 */
export class TaskRecord implements TaskView {
  readonly spec: TaskSpec;
  /** The member pool of its replica set that holds the task; a queued task may move (late binding). */
  poolId: string;
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
  readonly cost: number;
  /** Text generated so far: a hard-preempted task resumes from prompt + text. */
  text = '';
  /** Times this task was hard-preempted (and later resumed). */
  preemptions = 0;
  /** Decode wall time of earlier runs of a preempted task (budgets). */
  priorRunMs = 0;
  redispatches = 0;
  /** The replica a re-dispatched task failed on: placed elsewhere while another is ready. */
  avoidReplicaId: string | undefined;

  constructor(spec: TaskSpec, poolId: string, maxEvents: number, cost: number, firstSeq = 1) {
    this.spec = spec;
    this.poolId = poolId;
    this.cost = cost;
    this.log = new EventLog(maxEvents, firstSeq);
  }

  get terminal(): boolean {
    return isTerminal(this.state);
  }

  /** Absolute time by which the task must finish. */
  get deadlineAtMs(): number {
    return this.spec.acceptedAtMs + this.spec.deadlineMs;
  }
}

/** Wall time a task spent on replicas so far (all runs of a preempted task). */
export function runMs(task: TaskView, now = task.finishedAtMs ?? 0): number {
  const current =
    task.dispatchedAtMs === undefined || task.state.kind === 'queued'
      ? 0
      : Math.max(0, now - task.dispatchedAtMs);
  return task.priorRunMs + current;
}
