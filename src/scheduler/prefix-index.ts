/**
 * What one replica's KV cache (approximately) holds: the prompt blocks routed to it, least
 * recently used dropped beyond a capacity in blocks, and the sessions it served. It is an
 * estimate kept by the orchestrator, not the engine's state: fed at dispatch, emptied when the
 * replica's engine is replaced (a restarted engine has an empty cache).
 */
export class PrefixIndex {
  /** Block hashes in LRU order (a Map iterates in insertion order: first is least recent). */
  readonly #blocks = new Map<string, true>();
  readonly #sessions = new Map<string, true>();
  #capacity: number;
  readonly #sessionCapacity: number;

  constructor(capacityBlocks: number, sessionCapacity = 4096) {
    this.#capacity = Math.max(1, Math.floor(capacityBlocks));
    this.#sessionCapacity = Math.max(1, sessionCapacity);
  }

  /** Blocks held. */
  get size(): number {
    return this.#blocks.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** A new capacity (what the replica reports changed); shrinking drops the least recent blocks. */
  resize(capacityBlocks: number): void {
    this.#capacity = Math.max(1, Math.floor(capacityBlocks));
    this.#evict();
  }

  /** How many leading blocks of a prompt are held; reading does not refresh them. */
  match(hashes: readonly string[]): number {
    let k = 0;
    while (k < hashes.length && this.#blocks.has(hashes[k] as string)) k++;
    return k;
  }

  holdsSession(key: string): boolean {
    return this.#sessions.has(key);
  }

  /**
   * A prompt was routed here: its blocks become the most recent, its first block most of all, so
   * eviction takes a prompt's tail before its shared head (as vLLM frees blocks tail first).
   */
  record(hashes: readonly string[], sessionKey?: string): void {
    for (let k = hashes.length - 1; k >= 0; k--) {
      const h = hashes[k] as string;
      this.#blocks.delete(h);
      this.#blocks.set(h, true);
    }
    this.#evict();
    if (sessionKey !== undefined) {
      this.#sessions.delete(sessionKey);
      this.#sessions.set(sessionKey, true);
      for (const s of this.#sessions.keys()) {
        if (this.#sessions.size <= this.#sessionCapacity) break;
        this.#sessions.delete(s);
      }
    }
  }

  /** Forgets a session (deleted, or its KV erased). */
  forgetSession(key: string): void {
    this.#sessions.delete(key);
  }

  clear(): void {
    this.#blocks.clear();
    this.#sessions.clear();
  }

  #evict(): void {
    for (const h of this.#blocks.keys()) {
      if (this.#blocks.size <= this.#capacity) break;
      this.#blocks.delete(h);
    }
  }
}
