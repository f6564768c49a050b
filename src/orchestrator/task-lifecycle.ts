/**
 * The one owner of a task's life (ARCHITECTURE: "exactly one terminal event"). A task moves
 *
 *     accepted → queued → dispatched → streaming → ended
 *                  ▲                        │
 *                  └──── requeued (hard preemption) ◀┘
 *
 * and only this class changes its state or appends to its event log. Everything that reacts to
 * a task's life — metrics, logs, traces, quota release, fairness shares, the session ledger,
 * queue gauges — is a `TaskObserver` registered at construction; none of them calls back in.
 */
import type { EndData, ErrorData, MetricsData } from '../domain/events.js';
import type { TaskSpec } from '../domain/task.js';
import type { Clock } from '../domain/types.js';
import type { EngineEvent } from '../engines/adapter.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskTable } from './task-table.js';
import { TaskRecord, type TaskView } from './task-record.js';

export type CancelReason = 'client' | 'session-deleted';

export type Terminal =
  | {
      readonly kind: 'completed';
      readonly end: EndData;
      /** The engine slot that holds the session's KV now, when the engine reports it. */
      readonly slotId?: number | undefined;
    }
  | { readonly kind: 'canceled'; readonly end: EndData; readonly reason: CancelReason }
  | { readonly kind: 'failed'; readonly error: ErrorData }
  | {
      readonly kind: 'evicted';
      readonly error: ErrorData;
      /** Evicted by the full-queue policy, or preempted while queued for urgent work. */
      readonly cause: 'full-queue' | 'soft-preemption';
    };

/** What admission hands over with an accepted task. */
export interface Acceptance {
  readonly cost: number;
  readonly position: number;
  readonly predictedStartMs: number;
  readonly kvWarm: boolean;
}

/**
 * Reacts to the steps of a task's life. Observers read the task; they never change it, and the
 * lifecycle calls them after the step is complete (state and log already updated).
 */
export interface TaskObserver {
  accepted?(task: TaskView, pool: PoolRuntime, a: Acceptance): void;
  dispatched?(task: TaskView, pool: PoolRuntime): void;
  firstToken?(task: TaskView, pool: PoolRuntime): void;
  requeued?(task: TaskView, pool: PoolRuntime): void;
  /** The queued task moved to another member of its replica set. */
  moved?(task: TaskView, from: PoolRuntime, to: PoolRuntime): void;
  /** The task failed before its first token and waits to be dispatched to another replica. */
  redispatching?(task: TaskView, pool: PoolRuntime, failedOn: string, error: ErrorData): void;
  /** Exactly once per task, after its terminal event was appended. */
  finished?(task: TaskView, pool: PoolRuntime, t: Terminal): void;
}

export interface TaskLifecycleOptions {
  readonly clock: Clock;
  readonly table: TaskTable;
  /** How long an ended task's events stay readable. */
  readonly retentionMs: number;
  readonly maxEventsPerTask: number;
  readonly observers: readonly TaskObserver[];
  /** An observer threw: the step stands, the other observers still run. */
  readonly onObserverError?: (err: unknown, step: keyof TaskObserver, task: TaskView) => void;
}

export class TaskLifecycle {
  readonly #o: TaskLifecycleOptions;
  readonly #observers: TaskObserver[];

  constructor(opts: TaskLifecycleOptions) {
    this.#o = opts;
    this.#observers = [...opts.observers];
  }

  /**
   * Accepted → queued: the record exists, its stream starts with `started` (at `firstSeq`, above
   * every id of the task's earlier runs when it is taken back after a restart).
   */
  accept(spec: TaskSpec, pool: PoolRuntime, a: Acceptance, firstSeq = 1): TaskRecord {
    const task = new TaskRecord(spec, pool.id, this.#o.maxEventsPerTask, a.cost, firstSeq);
    task.kvWarm = a.kvWarm;
    this.#o.table.add(task);
    task.log.append({
      type: 'started',
      data: { queue_position: a.position, predicted_start_ms: a.predictedStartMs },
    });
    this.#notify('accepted', task, (o) => o.accepted?.(task, pool, a));
    return task;
  }

  /** Queued → dispatched: bound to `replicaId` (the caller took it off the queue). */
  dispatch(task: TaskRecord, pool: PoolRuntime, replicaId: string, kvWarm: boolean): void {
    if (task.terminal) return;
    task.replicaId = replicaId;
    task.dispatchedAtMs = this.#o.clock.now();
    task.kvWarm = kvWarm;
    task.state = { kind: 'dispatched', replicaId };
    this.#notify('dispatched', task, (o) => o.dispatched?.(task, pool));
  }

  /** Dispatched → streaming: generated tokens, one `token` event each, indices without gaps. */
  tokens(task: TaskRecord, pool: PoolRuntime, ev: Extract<EngineEvent, { kind: 'tokens' }>): void {
    if (task.terminal || task.replicaId === undefined) return;
    if (task.state.kind !== 'streaming') {
      task.state = { kind: 'streaming', replicaId: task.replicaId };
      if (task.firstTokenAtMs === undefined) {
        task.firstTokenAtMs = this.#o.clock.now();
        this.#notify('firstToken', task, (o) => o.firstToken?.(task, pool));
      }
    }
    // Text released for several tokens rides on the last one; ids are aligned to the end.
    const firstWithId = ev.count - ev.ids.length;
    for (let k = 0; k < ev.count; k++) {
      const t = k === ev.count - 1 ? ev.text : '';
      const id = k >= firstWithId ? ev.ids[k - firstWithId] : undefined;
      task.log.append({
        type: 'token',
        data: id === undefined ? { t, i: task.tokensOut++ } : { t, i: task.tokensOut++, id },
      });
    }
    task.text += ev.text;
  }

  /** The engine counted the prompt (first run only: a resumed run re-reads generated text). */
  promptCounted(task: TaskRecord, tokensIn: number): void {
    if (task.preemptions === 0 && !task.terminal) task.tokensIn = tokensIn;
  }

  /** A periodic, additive-only `metrics` frame (ORCH-3100). */
  metrics(task: TaskRecord, data: MetricsData): void {
    if (!task.terminal) task.log.append({ type: 'metrics', data });
  }

  /** Streaming → queued again after a hard preemption, with its tokens so far (SPEC §3.5). */
  requeue(task: TaskRecord, pool: PoolRuntime): void {
    if (task.terminal) return;
    const now = this.#o.clock.now();
    task.preemptions++;
    task.priorRunMs += now - (task.dispatchedAtMs ?? now);
    task.abortCause = undefined;
    task.abort = new AbortController();
    task.state = { kind: 'queued' };
    task.replicaId = undefined;
    requeueFront(pool, task, Math.max(1, task.spec.maxTokens - task.tokensOut));
    task.log.append({
      type: 'metrics',
      data: {
        preempted: true,
        resumable: true,
        tokens_out: task.tokensOut,
        queue_depth: pool.queue.size,
        on_time_probability: task.deadlineAtMs > now ? 0.5 : 0,
        kv_warmth: false,
      },
    });
    this.#notify('requeued', task, (o) => o.requeued?.(task, pool));
  }

  /**
   * Dispatched → queued again after its replica failed before the first token (SPEC §17 §5):
   * once per task, at the head of its queue, placed on another replica. The stream shows nothing
   * of the failed attempt.
   */
  redispatch(task: TaskRecord, pool: PoolRuntime, error: ErrorData): void {
    if (task.terminal || task.firstTokenAtMs !== undefined || task.replicaId === undefined) return;
    const now = this.#o.clock.now();
    const failedOn = task.replicaId;
    task.redispatches++;
    task.priorRunMs += now - (task.dispatchedAtMs ?? now);
    task.avoidReplicaId = failedOn;
    task.abortCause = undefined;
    task.abort = new AbortController();
    task.state = { kind: 'queued' };
    task.replicaId = undefined;
    requeueFront(pool, task, task.cost);
    this.#notify('redispatching', task, (o) => o.redispatching?.(task, pool, failedOn, error));
  }

  /**
   * Queued on `from` → queued on `to`, another member of its replica set (late binding, SPEC
   * §17 §4): at the head of `to`'s queue when `to` takes it to run now, else at its tail (a
   * drained member hands its queue over). Its stream shows nothing of the move.
   */
  move(task: TaskRecord, from: PoolRuntime, to: PoolRuntime, where: 'head' | 'tail'): boolean {
    if (task.terminal || task.state.kind !== 'queued' || task.poolId !== from.id || from === to) return false;
    const entry = from.queue.get(task.spec.taskId);
    if (!entry) return false;
    from.queue.remove(task.spec.taskId);
    task.poolId = to.id;
    if (where === 'head') to.queue.requeueFront(entry);
    else to.queue.adopt(entry);
    this.#notify('moved', task, (o) => o.moved?.(task, from, to));
    return true;
  }

  /**
   * Ends `task` once: a queued task leaves its queue, the terminal event is appended, observers
   * run, and the record is dropped after the retention window. Returns false (and changes
   * nothing) when the task had already ended.
   */
  finish(task: TaskRecord, pool: PoolRuntime, t: Terminal): boolean {
    if (task.terminal) return false;
    const now = this.#o.clock.now();
    if (task.state.kind === 'queued') pool.queue.remove(task.spec.taskId);
    task.finishedAtMs = now;
    const queueMs = (task.dispatchedAtMs ?? now) - task.spec.acceptedAtMs;
    switch (t.kind) {
      case 'completed':
        task.state = { kind: 'completed' };
        task.log.append({ type: 'end', data: { ...t.end, queue_ms: queueMs, ...servedBy(task, pool) } });
        break;
      case 'canceled':
        task.state = { kind: 'canceled' };
        task.log.append({ type: 'end', data: { ...t.end, queue_ms: queueMs } });
        break;
      case 'failed':
      case 'evicted':
        task.state = { kind: t.kind, code: t.error.code };
        task.log.append({ type: 'error', data: t.error });
        break;
    }
    this.#notify('finished', task, (o) => o.finished?.(task, pool, t));
    setTimeout(() => this.#o.table.drop(task), this.#o.retentionMs).unref();
    return true;
  }

  /** One observer's failure must not cost a task its quota release or budget settlement. */
  #notify(step: keyof TaskObserver, task: TaskView, call: (o: TaskObserver) => void): void {
    for (const o of this.#observers) {
      try {
        call(o);
      } catch (err) {
        this.#o.onObserverError?.(err, step, task);
      }
    }
  }
}

/** Back at the head of its queue, keeping its class and tenant credit. */
function requeueFront(pool: PoolRuntime, task: TaskView, cost: number): void {
  pool.queue.requeueFront({
    id: task.spec.taskId,
    priority: task.spec.priority,
    tenant: task.spec.tenant,
    cost,
    deadlineAtMs: task.deadlineAtMs,
  });
}

/** Which replica served a completed task, and its identity (clients check determinism with it). */
function servedBy(task: TaskView, pool: PoolRuntime): { replica_id?: string; engine_version?: string } {
  if (task.replicaId === undefined) return {};
  const props = pool.replica(task.replicaId)?.props;
  return { replica_id: task.replicaId, engine_version: props?.engineVersion ?? pool.engineVersion() };
}
