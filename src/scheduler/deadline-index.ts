/**
 * Queued entries by deadline (a binary min-heap with lazy deletion), so the periodic deadline
 * sweep looks only at entries that could be due instead of walking the whole queue: with 100k
 * queued tasks and distant deadlines a sweep is O(1), not O(queue).
 */
interface Slot {
  readonly at: number;
  readonly id: string;
}

export class DeadlineIndex {
  #heap: Slot[] = [];

  get size(): number {
    return this.#heap.length;
  }

  add(id: string, at: number): void {
    this.#heap.push({ at, id });
    this.#up(this.#heap.length - 1);
  }

  /**
   * Ids whose deadline is at or before `at` and that `live` still holds (each once). Dead slots
   * met on the way are dropped; live ones stay indexed until `live` stops holding them.
   */
  dueBy(at: number, live: (id: string) => boolean): string[] {
    const popped: Slot[] = [];
    while (this.#heap.length > 0 && (this.#heap[0]?.at ?? Infinity) <= at) popped.push(this.#pop());
    const due = new Set<string>();
    for (const s of popped)
      if (live(s.id) && !due.has(s.id)) {
        due.add(s.id);
        this.add(s.id, s.at);
      }
    return [...due];
  }

  /** Drops every slot `live` no longer holds (called when dead slots outnumber live entries). */
  compact(live: (id: string) => boolean): void {
    const seen = new Set<string>();
    this.#heap = this.#heap.filter((s) => live(s.id) && !seen.has(s.id) && (seen.add(s.id), true));
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #pop(): Slot {
    const top = this.#heap[0] as Slot;
    const last = this.#heap.pop() as Slot;
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#down(0);
    }
    return top;
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Slot).at <= (h[i] as Slot).at) break;
      [h[parent], h[i]] = [h[i] as Slot, h[parent] as Slot];
      i = parent;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && (h[l] as Slot).at < (h[m] as Slot).at) m = l;
      if (r < h.length && (h[r] as Slot).at < (h[m] as Slot).at) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i] as Slot, h[m] as Slot];
      i = m;
    }
  }
}
