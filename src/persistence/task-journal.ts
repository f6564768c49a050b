/**
 * The task journal's writer (SPEC §17.1): admissions, dispatches and endings are queued in
 * memory and committed together, one store transaction per event-loop turn (group commit), so
 * no admission waits for a disk write of its own. A write queued while a transaction is in
 * flight joins the next one.
 */
import type { Store, TaskJournalEntry, TaskJournalOp } from './store.js';

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export interface TaskJournalOptions {
  readonly store: Pick<Store, 'writeTaskJournal'>;
  /** A batch could not be written: the tasks stand, their journal lines are lost. */
  readonly onError: (err: unknown, ops: number) => void;
}

export class TaskJournal {
  readonly #o: TaskJournalOptions;
  #pending: TaskJournalOp[] = [];
  /** Settles when the pending ops are committed. */
  #next: Deferred | undefined;
  /** Settles when the transaction in flight is committed. */
  #inFlight: Deferred | undefined;
  #scheduled = false;
  #batches = 0;
  #ops = 0;

  constructor(opts: TaskJournalOptions) {
    this.#o = opts;
  }

  /** Transactions written so far, and the ops they held (group commit is observable). */
  get stats(): { batches: number; ops: number } {
    return { batches: this.#batches, ops: this.#ops };
  }

  accepted(entry: TaskJournalEntry): void {
    this.#push({ op: 'accepted', entry });
  }

  running(taskId: string): void {
    this.#push({ op: 'running', taskId });
  }

  /** The task was taken back after a restart for the `restarts`-th time. */
  restarted(taskId: string, restarts: number): void {
    this.#push({ op: 'restarted', taskId, restarts });
  }

  ended(taskId: string, outcome: Readonly<Record<string, unknown>>, atMs: number): void {
    this.#push({ op: 'ended', taskId, outcome, atMs });
  }

  /** Settles once everything queued before this call is committed (or its failure reported). */
  committed(): Promise<void> {
    if (this.#next) return this.#next.promise;
    return this.#inFlight?.promise ?? Promise.resolve();
  }

  /** Waits until nothing is queued or in flight. */
  async close(): Promise<void> {
    while (this.#next || this.#inFlight) await this.committed();
  }

  #push(op: TaskJournalOp): void {
    this.#pending.push(op);
    this.#next ??= deferred();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: every admission of this turn of the event loop joins.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const ops = this.#pending;
    const done = this.#next;
    if (ops.length === 0 || !done) return;
    this.#pending = [];
    this.#next = undefined;
    this.#inFlight = done;
    try {
      await this.#o.store.writeTaskJournal(ops);
      this.#batches++;
      this.#ops += ops.length;
    } catch (err) {
      this.#o.onError(err, ops.length);
    } finally {
      this.#inFlight = undefined;
      done.resolve();
      if (this.#pending.length > 0) this.#schedule();
    }
  }
}
