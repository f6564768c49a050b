/**
 * Insertion-ordered FIFO with O(1) push, shift, pop and removal by key. The queue depth never
 * makes cancel more expensive (SPEC §3.1).
 */
interface Node<T> {
  readonly key: string;
  readonly value: T;
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
}

export class LinkedFifo<T> {
  #head: Node<T> | undefined;
  #tail: Node<T> | undefined;
  readonly #index = new Map<string, Node<T>>();

  get size(): number {
    return this.#index.size;
  }

  has(key: string): boolean {
    return this.#index.has(key);
  }

  get(key: string): T | undefined {
    return this.#index.get(key)?.value;
  }

  push(key: string, value: T): void {
    if (this.#index.has(key)) throw new Error(`duplicate key ${key}`);
    const node: Node<T> = { key, value, prev: this.#tail, next: undefined };
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#index.set(key, node);
  }

  /** Inserts at the head (an entry that returns to the front of the line). */
  unshift(key: string, value: T): void {
    if (this.#index.has(key)) throw new Error(`duplicate key ${key}`);
    const node: Node<T> = { key, value, prev: undefined, next: this.#head };
    if (this.#head) this.#head.prev = node;
    else this.#tail = node;
    this.#head = node;
    this.#index.set(key, node);
  }

  /** Oldest entry. */
  peekFirst(): T | undefined {
    return this.#head?.value;
  }

  /** Newest entry. */
  peekLast(): T | undefined {
    return this.#tail?.value;
  }

  shift(): T | undefined {
    const h = this.#head;
    if (!h) return undefined;
    this.#unlink(h);
    return h.value;
  }

  pop(): T | undefined {
    const t = this.#tail;
    if (!t) return undefined;
    this.#unlink(t);
    return t.value;
  }

  remove(key: string): T | undefined {
    const node = this.#index.get(key);
    if (!node) return undefined;
    this.#unlink(node);
    return node.value;
  }

  *values(): IterableIterator<T> {
    for (let n = this.#head; n; n = n.next) yield n.value;
  }

  #unlink(node: Node<T>): void {
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
    this.#index.delete(node.key);
  }
}
