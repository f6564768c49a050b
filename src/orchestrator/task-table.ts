/**
 * The tasks this orchestrator knows: live and recently ended records (readable streams), and the
 * ids already used, remembered with their tenant, request digest and original acceptance after
 * the records are gone — so a resubmission is answered idempotently or refused as a conflict, and
 * a cancel of an ended task stays `204`, for as long as the id is remembered (ORCH-3024, SPEC §17
 * §2.1 §2.3). The task journal fills it again after a restart.
 */
import type { Accepted } from '../domain/submit.js';
import type { TaskRecord, TaskView } from './task-record.js';

/** What is remembered of a used task id. */
export interface UsedId {
  readonly tenant: string;
  /** Digest of the canonical validated request; absent for ids used without one. */
  readonly bodyDigest?: string | undefined;
  /** The answer the id's acceptance got. */
  readonly acceptance?: Accepted | undefined;
}

export interface TaskTableOptions {
  /** How many used ids are remembered after their records were dropped (oldest forgotten first). */
  readonly rememberedIds: number;
  /** How many ended tasks stay listable after their records were dropped (default 256). */
  readonly recentEnded?: number;
}

/**
 * What a task listing shows of an ended task whose record was dropped: its identity and outcome,
 * without its prompt, text or event log, so the recent list costs little memory.
 */
export type EndedTask = Pick<
  TaskView,
  'poolId' | 'state' | 'replicaId' | 'dispatchedAtMs' | 'finishedAtMs' | 'tokensOut' | 'deadlineAtMs'
> & {
  readonly terminal: true;
  readonly spec: Pick<
    TaskView['spec'],
    'taskId' | 'tenant' | 'sessionId' | 'modelRef' | 'priority' | 'deadlineMs' | 'acceptedAtMs'
  >;
};

export class TaskTable {
  readonly #o: TaskTableOptions;
  readonly #tasks = new Map<string, TaskRecord>();
  /** Used task id → what is remembered of it, in insertion order (a Map iterates oldest first). */
  readonly #used = new Map<string, UsedId>();
  /** Ended tasks whose records were dropped, oldest first, at most `recentEnded`. */
  readonly #ended: EndedTask[] = [];

  constructor(opts: TaskTableOptions) {
    this.#o = opts;
  }

  get(id: string): TaskRecord | undefined {
    return this.#tasks.get(id);
  }

  /** True when `id` was ever accepted here (within the remembered window). */
  used(id: string): boolean {
    return this.#tasks.has(id) || this.#used.has(id);
  }

  /** The tenant that used `id`, while it is remembered. */
  usedBy(id: string): string | undefined {
    return this.#tasks.get(id)?.spec.tenant ?? this.#used.get(id)?.tenant;
  }

  /** What is remembered of a used id, and whether its task has ended (no live record). */
  usedId(id: string): (UsedId & { readonly ended: boolean }) | undefined {
    const used = this.#used.get(id);
    const task = this.#tasks.get(id);
    if (!used && !task) return undefined;
    return { ...(used ?? { tenant: task?.spec.tenant ?? '' }), ended: task === undefined || task.terminal };
  }

  add(task: TaskRecord): void {
    this.#tasks.set(task.spec.taskId, task);
    const known = this.#used.get(task.spec.taskId);
    this.remember(task.spec.taskId, known ?? { tenant: task.spec.tenant });
  }

  /** Remembers a used id (its acceptance, or an ended task read back from the journal). */
  remember(id: string, used: UsedId): void {
    this.#used.delete(id);
    this.#used.set(id, used);
    if (this.#used.size > this.#o.rememberedIds) {
      const oldest = this.#used.keys().next();
      if (!oldest.done) this.#used.delete(oldest.value);
    }
  }

  /** Drops an ended task's record (its events are no longer readable); its id stays remembered. */
  drop(task: TaskRecord): void {
    if (this.#tasks.get(task.spec.taskId) !== task) return;
    this.#tasks.delete(task.spec.taskId);
    if (!task.terminal) return;
    this.#ended.push(endedTask(task));
    if (this.#ended.length > (this.#o.recentEnded ?? 256)) this.#ended.shift();
  }

  /**
   * Ended tasks, newest first: those whose records are still retained, then the bounded list of
   * dropped ones. Each appears once (a dropped record is no longer among the retained).
   */
  *ended(): IterableIterator<TaskView | EndedTask> {
    const retained = [...this.#tasks.values()].filter((t) => t.terminal);
    retained.sort((a, b) => (b.finishedAtMs ?? 0) - (a.finishedAtMs ?? 0));
    yield* retained;
    for (let i = this.#ended.length - 1; i >= 0; i--) yield this.#ended[i]!;
  }

  values(): IterableIterator<TaskRecord> {
    return this.#tasks.values();
  }

  /** Live (not yet ended) tasks. */
  *live(): IterableIterator<TaskRecord> {
    for (const t of this.#tasks.values()) if (!t.terminal) yield t;
  }
}

function endedTask(t: TaskRecord): EndedTask {
  const { taskId, tenant, sessionId, modelRef, priority, deadlineMs, acceptedAtMs } = t.spec;
  return {
    spec: { taskId, tenant, sessionId, modelRef, priority, deadlineMs, acceptedAtMs },
    poolId: t.poolId,
    state: t.state,
    replicaId: t.replicaId,
    dispatchedAtMs: t.dispatchedAtMs,
    finishedAtMs: t.finishedAtMs,
    tokensOut: t.tokensOut,
    deadlineAtMs: t.deadlineAtMs,
    terminal: true,
  };
}
