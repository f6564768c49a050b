import type { TaskEvent } from '../domain/events.js';

export interface LoggedEvent {
  /**
   * Per-task sequence number, the SSE `id:`; starts at the log's `firstSeq` (1, or higher for a
   * task taken back after a restart, so ids never repeat across the task's runs).
   */
  readonly seq: number;
  readonly event: TaskEvent;
}

export type EventListener = (e: LoggedEvent) => void;

/**
 * Sequence numbers a task's log starts at after its `n`-th restart: `n · SEQ_EPOCH + 1`. One run
 * of a task never gets near 2^32 events, so a `Last-Event-ID` below a log's first seq is always
 * one from an earlier run; ids stay exact integers for 2^21 restarts.
 */
export const SEQ_EPOCH = 2 ** 32;

/** Inclusive range of sequence numbers. */
export interface SeqRange {
  readonly from: number;
  readonly to: number;
}

/** What readers (the SSE relay, observers) may use: everything but `append`. */
export type EventLogReader = Omit<EventLog, 'append'>;

/**
 * Append-only, bounded log of one task's SSE events. Streams only read it, so late subscribers
 * and `Last-Event-ID` resumes replay from it, and a slow client never blocks the producer.
 *
 * At most `maxEvents` events are kept: the first one (`started`) and the newest ones after it.
 * Older events fall out of a ring, so the events after `started` are always one contiguous run
 * and a reader can be told exactly which ones it can no longer get (`unretained`).
 */
export class EventLog {
  #head: LoggedEvent | undefined;
  /** Events after the head; a ring once it holds `#tailCapacity`, oldest at `#oldest`. */
  readonly #tail: LoggedEvent[] = [];
  readonly #tailCapacity: number;
  #oldest = 0;
  /** Events after the head that fell out of the ring: seqs first + 1 .. first + dropped. */
  #dropped = 0;
  readonly #listeners = new Set<EventListener>();
  readonly #firstSeq: number;
  #nextSeq: number;
  #closed = false;

  constructor(maxEvents: number, firstSeq = 1) {
    // Room for `started` and the terminal event at least.
    this.#tailCapacity = Math.max(2, maxEvents) - 1;
    this.#firstSeq = firstSeq;
    this.#nextSeq = firstSeq;
  }

  /** The seq of the first event (`started`). */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while at least one stream client listens. */
  get watched(): boolean {
    return this.#listeners.size > 0;
  }

  /** Stream clients listening now. */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Events held now (at most the bound). */
  get size(): number {
    return (this.#head === undefined ? 0 : 1) + this.#tail.length;
  }

  /** Append an event; a terminal event (`end`/`error`) closes the log. Appends after close are ignored. */
  append(event: TaskEvent): LoggedEvent | undefined {
    if (this.#closed) return undefined;
    const logged: LoggedEvent = { seq: this.#nextSeq++, event };
    if (this.#head === undefined) this.#head = logged;
    else if (this.#tail.length < this.#tailCapacity) this.#tail.push(logged);
    else {
      // Overwrite the oldest slot: O(1) however long the stream, where shifting a 100k array
      // per token would not be.
      this.#tail[this.#oldest] = logged;
      this.#oldest = (this.#oldest + 1) % this.#tailCapacity;
      this.#dropped++;
    }
    if (event.type === 'end' || event.type === 'error') this.#closed = true;
    for (const l of this.#listeners) l(logged);
    if (this.#closed) this.#listeners.clear();
    return logged;
  }

  /**
   * The seqs a reader that has seen everything up to `afterSeq` would need but the log no longer
   * holds; undefined when `since(afterSeq)` is complete. A reader from the start (any seq below
   * the first) gets the head, so it misses whatever fell out after it.
   */
  unretained(afterSeq: number): SeqRange | undefined {
    const from = Math.max(afterSeq, this.#firstSeq) + 1;
    const to = this.#firstSeq + this.#dropped;
    return from <= to ? { from, to } : undefined;
  }

  /** Retained events with seq greater than `afterSeq`, in order (check `unretained` first). */
  since(afterSeq: number): readonly LoggedEvent[] {
    const out: LoggedEvent[] = [];
    if (this.#head !== undefined && this.#head.seq > afterSeq) out.push(this.#head);
    const n = this.#tail.length;
    const firstTailSeq = this.#firstSeq + this.#dropped + 1;
    for (let k = Math.max(0, afterSeq + 1 - firstTailSeq); k < n; k++) {
      const e = this.#tail[(this.#oldest + k) % n];
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  /**
   * The retained events after `afterSeq`, then each new one as it is appended, each once and in
   * order. Returns the unsubscribe function; after it, the listener is not called again (also
   * for the rest of a replay in progress).
   */
  follow(afterSeq: number, listener: EventListener): () => void {
    let last = afterSeq;
    let off = false;
    const handle = (e: LoggedEvent): void => {
      if (off || e.seq <= last) return;
      last = e.seq;
      listener(e);
    };
    for (const e of this.since(afterSeq)) handle(e);
    const unsubscribe = this.subscribe(handle);
    return () => {
      off = true;
      unsubscribe();
    };
  }

  /** Listen for new events; returns an unsubscribe function. No-op once closed. */
  subscribe(listener: EventListener): () => void {
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
