import type { TaskEvent } from '../domain/events.js';

export interface LoggedEvent {
  /** Per-task sequence number, the SSE `id:`; starts at 1. */
  readonly seq: number;
  readonly event: TaskEvent;
}

export type EventListener = (e: LoggedEvent) => void;

/**
 * Append-only, bounded log of one task's SSE events. Streams only read it, so late subscribers
 * and `Last-Event-ID` resumes replay from the log, and a slow client never blocks the producer.
 */
export class EventLog {
  readonly #events: LoggedEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  readonly #maxEvents: number;
  #nextSeq = 1;
  #closed = false;

  constructor(maxEvents: number) {
    this.#maxEvents = Math.max(2, maxEvents);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while at least one stream client listens. */
  get watched(): boolean {
    return this.#listeners.size > 0;
  }

  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Append an event; a terminal event (`end`/`error`) closes the log. Appends after close are ignored. */
  append(event: TaskEvent): LoggedEvent | undefined {
    if (this.#closed) return undefined;
    const logged: LoggedEvent = { seq: this.#nextSeq++, event };
    this.#events.push(logged);
    if (this.#events.length > this.#maxEvents) {
      // Keep `started` (always first) so every reader still sees the stream's head.
      this.#events.splice(1, 1);
    }
    if (event.type === 'end' || event.type === 'error') this.#closed = true;
    for (const l of this.#listeners) l(logged);
    if (this.#closed) this.#listeners.clear();
    return logged;
  }

  /** Events with seq greater than `afterSeq`, in order. */
  since(afterSeq: number): readonly LoggedEvent[] {
    if (afterSeq <= 0) return [...this.#events];
    return this.#events.filter((e) => e.seq > afterSeq);
  }

  /** Listen for new events; returns an unsubscribe function. No-op once closed. */
  subscribe(listener: EventListener): () => void {
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
