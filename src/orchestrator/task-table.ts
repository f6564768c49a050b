/**
 * The tasks this orchestrator knows: live and recently ended records (readable streams), and the
 * ids already used, remembered with their tenant after the records are gone — so a duplicate id
 * is refused and a cancel of an ended task stays `204` for as long as the id is remembered
 * (ORCH-3024, SPEC §17 §2.3).
 */
import type { TaskRecord } from './task-record.js';

export interface TaskTableOptions {
  /** How many used ids are remembered after their records were dropped (oldest forgotten first). */
  readonly rememberedIds: number;
}

export class TaskTable {
  readonly #o: TaskTableOptions;
  readonly #tasks = new Map<string, TaskRecord>();
  /** Used task id → tenant, in insertion order (a Map iterates oldest first). */
  readonly #used = new Map<string, string>();

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
    return this.#tasks.get(id)?.spec.tenant ?? this.#used.get(id);
  }

  add(task: TaskRecord): void {
    this.#tasks.set(task.spec.taskId, task);
    this.#used.set(task.spec.taskId, task.spec.tenant);
    if (this.#used.size > this.#o.rememberedIds) {
      const oldest = this.#used.keys().next();
      if (!oldest.done) this.#used.delete(oldest.value);
    }
  }

  /** Drops an ended task's record (its events are no longer readable); its id stays remembered. */
  drop(task: TaskRecord): void {
    if (this.#tasks.get(task.spec.taskId) === task) this.#tasks.delete(task.spec.taskId);
  }

  values(): IterableIterator<TaskRecord> {
    return this.#tasks.values();
  }

  /** Live (not yet ended) tasks. */
  *live(): IterableIterator<TaskRecord> {
    for (const t of this.#tasks.values()) if (!t.terminal) yield t;
  }
}
