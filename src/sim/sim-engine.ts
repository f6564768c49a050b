/**
 * The behaviour model behind `llorch sim`: an inference engine without a GPU. Slots with
 * continuous batching, prefill cost per uncached prompt token, a decode rate per slot that falls
 * as the batch grows, a KV cache with prefix reuse and LRU eviction, per-slot KV that can be
 * erased, the context limit, and injectable faults. Tokens are a deterministic function of
 * (prompt, seed, sampler profile), so replicas of one simulated replica set agree byte for byte.
 */
import { createHash } from 'node:crypto';

export interface SimEngineOptions {
  readonly modelId: string;
  readonly engineVersion: string;
  /** Concurrent sequences (continuous batching). */
  readonly slots: number;
  /** Context length per sequence, in tokens. */
  readonly ctx: number;
  /** Decode rate of one sequence running alone. */
  readonly tokensPerSecond: number;
  /** Relative slowdown per additional running sequence (0.1 → 10 % slower per neighbour). */
  readonly batchSlowdown: number;
  /** Prefill rate for uncached prompt tokens. */
  readonly prefillTokensPerSecond: number;
  /** KV cache capacity in tokens shared by all cached prefixes. */
  readonly kvCapacityTokens: number;
  /**
   * Time the model takes to "load" at start: dialects whose engine listens meanwhile answer
   * "loading", the others do not listen until loaded (`LISTENS_WHILE_LOADING`).
   */
  readonly loadMs: number;
  readonly embeddingDim: number;
  /**
   * Chance that the model samples end-of-sequence at each generated token (0: never). The draw is
   * seeded like the tokens, so a request ends at the same position on every replica.
   */
  readonly eosProbability?: number | undefined;
  /** vLLM: the task the model serves (`--task`, `--runner`): text generation or embeddings. */
  readonly servedTask?: 'generate' | 'embed' | undefined;
  /** vLLM: automatic prefix caching (`--enable-prefix-caching`); undefined: the release's default. */
  readonly prefixCaching?: boolean | undefined;
  /**
   * Tokens per KV block of a paged prefix cache (vLLM's `--block-size`, 16 by default): the cache
   * holds hashed full blocks, each once however many cached prompts share it, least recently
   * used blocks evicted first and a prompt's tail before its head. Undefined: the cache holds
   * whole token sequences, a shared prefix once per sequence (llama-server's per-slot and
   * `--cache-ram` prompt caches).
   */
  readonly kvBlockTokens?: number | undefined;
  /**
   * vLLM: tool calling as its flags set it (`--enable-auto-tool-choice`, `--tool-call-parser`);
   * undefined: neither flag.
   */
  readonly toolCalling?:
    { readonly autoToolChoice: boolean; readonly parser?: string | undefined } | undefined;
}

export const SIM_DEFAULTS: Omit<SimEngineOptions, 'modelId' | 'engineVersion'> = {
  slots: 4,
  ctx: 4096,
  tokensPerSecond: 200,
  batchSlowdown: 0.1,
  prefillTokensPerSecond: 5_000,
  kvCapacityTokens: 65_536,
  loadMs: 0,
  embeddingDim: 16,
};

/** Faults an operator (or a test) can inject (flags or `POST /__sim/faults`). */
export interface SimFaults {
  /** Exit the process with this code on the next token. */
  crash?: number | undefined;
  /** Stop producing tokens (streams stall, connections stay open). */
  hang?: boolean | undefined;
  /** Extra delay before every token, in ms. */
  slowTokenMs?: number | undefined;
  /** Answer "loading" (503) until this absolute time (ms since epoch). */
  loadingUntilMs?: number | undefined;
  /** Fail running streams with an out-of-memory error after this many tokens. */
  oomAfterTokens?: number | undefined;
  /** Refuse new generation requests (engine overloaded). */
  refuse?: boolean | undefined;
}

export class SimError extends Error {
  constructor(
    readonly kind: 'ctx' | 'oom' | 'refused' | 'loading' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'SimError';
  }
}

export interface SimToken {
  readonly id: number;
  readonly text: string;
  /** The end-of-sequence token: engines count it but most send no text for it. */
  readonly special?: boolean;
}

/** Why a simulated generation ended: max tokens, end-of-sequence, or a stop string of the request. */
export interface SimFinish {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly finish: 'length' | 'eos' | 'stop';
  /** The stop string the generated text ended with (`finish: 'stop'`). */
  readonly stopString?: string;
}

export interface SimGenerateOptions {
  readonly maxTokens: number;
  readonly seed: number;
  readonly samplerProfile?: string;
  readonly ignoreEos?: boolean;
  readonly cachePrompt?: boolean;
  /** Stop strings: generation ends once the generated text ends with one of them. */
  readonly stop?: readonly string[];
  /** Called with the slot index once the request holds a slot. */
  readonly onSlot?: (slot: number) => void;
  /** Called with the prompt tokens found in the KV cache, before prefill (llama.cpp's `cache_n`). */
  readonly onPrefill?: (cachedTokens: number) => void;
}

/** What one slot holds, as llama-server's `/slots` reports it. */
export interface SimSlotView {
  readonly busy: boolean;
  /** False until the slot has served a request. */
  readonly used: boolean;
  /** Tokens whose KV the slot holds: the last request's prompt and its generated tokens but the last. */
  readonly cachedTokens: number;
}

interface SimSlot {
  busy: boolean;
  used: boolean;
  tokens: readonly number[];
  /** Ticks of a logical clock at release: the least recently used idle slot takes new work. */
  lastUsed: number;
  /** Erases waiting for the slot's request to end. */
  readonly onIdle: (() => void)[];
}

/** llama.cpp's `--slot-prompt-similarity` default: below it a slot's cache is not worth reusing. */
const SLOT_PROMPT_SIMILARITY = 0.1;

/** Byte-level vocabulary like the generated GGUF: 0 unk, 1 bos, 2 eos, 3 + byte. */
const BOS = 1;
const EOS = 2;
const BYTE0 = 3;
/** Generated text stays printable ASCII so every chunk is valid UTF-8. */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ,.';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export class SimEngine {
  readonly opts: SimEngineOptions;
  faults: SimFaults = {};
  readonly #startedAt = Date.now();
  readonly #slots: SimSlot[];
  #clock = 0;
  readonly #waiters: (() => void)[] = [];
  /** Cached prompt token sequences by hash, in LRU order (oldest first). */
  readonly #kv = new Map<string, readonly number[]>();
  #kvTokens = 0;
  /** The paged cache's block hashes in LRU order (`kvBlockTokens`), oldest first. */
  readonly #kvBlocks = new Map<string, true>();
  readonly #blockKeyMemo = new WeakMap<readonly number[], readonly string[]>();
  readonly stats = {
    requests: 0,
    promptTokens: 0,
    cachedPromptTokens: 0,
    generatedTokens: 0,
    evictions: 0,
    errors: 0,
    /** Slot erases served (llama.cpp `POST /slots/{id}?action=erase`). */
    slotErases: 0,
    /** Tokenizer endpoint calls served (`/tokenize`, `/chat_tokenize`), not generation's own. */
    tokenizeRequests: 0,
  };

  constructor(opts: SimEngineOptions) {
    this.opts = opts;
    this.#slots = Array.from({ length: Math.max(1, opts.slots) }, () => ({
      busy: false,
      used: false,
      tokens: [],
      // llama-server starts every slot at -1 and breaks LRU ties towards the last slot.
      lastUsed: -1,
      onIdle: [],
    }));
  }

  get running(): number {
    return this.#slots.filter((s) => s.busy).length;
  }

  get slots(): readonly SimSlotView[] {
    return this.#slots.map((s) => ({ busy: s.busy, used: s.used, cachedTokens: s.tokens.length }));
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  get kvUsage(): number {
    if (this.opts.kvCapacityTokens === 0) return 0;
    const held = this.#blockTokens === undefined ? this.#kvTokens : this.#kvBlocks.size * this.#blockTokens;
    return held / this.opts.kvCapacityTokens;
  }

  get #blockTokens(): number | undefined {
    const b = this.opts.kvBlockTokens;
    return b !== undefined && b > 0 ? Math.floor(b) : undefined;
  }

  /**
   * Chained hashes of the full blocks of `tokens`: equal at k means equal tokens up to block k's
   * end. Two 32-bit FNV-1a lanes with different offsets (collisions are negligible at a
   * simulator's cache size, and hashing stays off the time to first token), computed once per
   * prompt array.
   */
  #blockKeys(tokens: readonly number[], size: number): readonly string[] {
    const memo = this.#blockKeyMemo.get(tokens);
    if (memo !== undefined) return memo;
    const keys: string[] = [];
    let a = 0x811c9dc5;
    let b = 0x01000193 ^ 0x9e3779b9;
    for (let at = 0; at + size <= tokens.length; at += size) {
      for (let i = at; i < at + size; i++) {
        const t = tokens[i] ?? 0;
        a = Math.imul(a ^ t, 0x01000193);
        b = Math.imul(b ^ (t + 0x5bd1e995), 0x01000193) ^ (b >>> 15);
      }
      keys.push(`${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}`);
    }
    this.#blockKeyMemo.set(tokens, keys);
    return keys;
  }

  /** Makes `keys` the most recent blocks, the first (a prompt's head) most of all. */
  #touchBlocks(keys: readonly string[]): void {
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k] as string;
      this.#kvBlocks.delete(key);
      this.#kvBlocks.set(key, true);
    }
  }

  /** Decode time of one token per sequence while `running` sequences share the batch. */
  perTokenMs(running: number): number {
    return (1000 / this.opts.tokensPerSecond) * (1 + this.opts.batchSlowdown * Math.max(0, running - 1));
  }

  /** Prefill time of a prompt: only tokens not covered by a cached prefix cost anything. */
  prefillMs(promptTokens: number, cachedTokens: number): number {
    return ((promptTokens - cachedTokens) / this.opts.prefillTokensPerSecond) * 1000;
  }

  loading(): boolean {
    if (Date.now() - this.#startedAt < this.opts.loadMs) return true;
    return (this.faults.loadingUntilMs ?? 0) > Date.now();
  }

  tokenize(text: string, addSpecial = true): number[] {
    const bytes = [...Buffer.from(text, 'utf8')].map((b) => b + BYTE0);
    return addSpecial ? [BOS, ...bytes] : bytes;
  }

  detokenize(ids: readonly number[]): string {
    return Buffer.from(ids.filter((i) => i >= BYTE0).map((i) => i - BYTE0)).toString('utf8');
  }

  /** A deterministic unit vector per input (embedding workloads). */
  embed(input: string): number[] {
    const v: number[] = [];
    for (let k = 0; v.length < this.opts.embeddingDim; k++) {
      const h = createHash('sha256').update(`${this.opts.modelId}\0${input}\0${k}`).digest();
      for (let j = 0; j + 4 <= h.length && v.length < this.opts.embeddingDim; j += 4)
        v.push(h.readInt32BE(j) / 2 ** 31);
    }
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => x / norm);
  }

  #token(prompt: string, seed: number, profile: string, k: number, ignoreEos: boolean): SimToken {
    const h = createHash('sha256')
      .update(`${this.opts.modelId}\0${profile}\0${seed}\0${prompt}\0${k}`)
      .digest();
    const pEos = this.opts.eosProbability ?? 0;
    if (!ignoreEos && pEos > 0 && h.readUInt32BE(4) / 2 ** 32 < pEos)
      return { id: EOS, text: '</s>', special: true };
    const ch = ALPHABET[h.readUInt32BE(0) % ALPHABET.length] ?? 'a';
    return { id: ch.charCodeAt(0) + BYTE0, text: ch };
  }

  /**
   * llama-server's slot choice: the idle slot whose cached tokens share the largest fraction of
   * the prompt (above the similarity threshold), else the least recently used idle one.
   */
  #pick(tokens: readonly number[]): number {
    let best = -1;
    let bestSim = 0;
    this.#slots.forEach((slot, i) => {
      if (slot.busy || slot.tokens.length === 0 || tokens.length === 0) return;
      const n = Math.min(slot.tokens.length, tokens.length);
      let k = 0;
      while (k < n && slot.tokens[k] === tokens[k]) k++;
      const sim = k / tokens.length;
      if (sim > bestSim && sim > SLOT_PROMPT_SIMILARITY) {
        bestSim = sim;
        best = i;
      }
    });
    if (best >= 0) return best;
    let t = Infinity;
    this.#slots.forEach((slot, i) => {
      if (!slot.busy && slot.lastUsed <= t) {
        t = slot.lastUsed;
        best = i;
      }
    });
    return best;
  }

  #take(tokens: readonly number[]): number | undefined {
    const i = this.#pick(tokens);
    const slot = this.#slots[i];
    if (slot === undefined) return undefined;
    slot.busy = true;
    slot.used = true;
    return i;
  }

  async #acquire(tokens: readonly number[], signal: AbortSignal): Promise<number> {
    const free = this.#take(tokens);
    if (free !== undefined) return free;
    return new Promise<number>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(this.#take(tokens) ?? 0);
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }

  #release(i: number, tokens: readonly number[]): void {
    const slot = this.#slots[i];
    if (slot === undefined) return;
    slot.busy = false;
    slot.tokens = tokens;
    slot.lastUsed = ++this.#clock;
    // Deferred erases run before queued requests can take the slot again, as in llama-server.
    for (const erase of slot.onIdle.splice(0)) erase();
    this.#waiters.shift()?.();
  }

  /**
   * Erases slot `i`'s KV, waiting for its request to end first (llama-server defers the erase of
   * a busy slot). The prefix-cache entries only this slot's tokens stood for go with it, so the
   * next turn pays its prefill again. Returns the number of tokens erased.
   */
  async eraseSlot(i: number): Promise<number> {
    const slot = this.#slots[i];
    if (slot === undefined) throw new SimError('invalid', 'Invalid slot ID');
    // Not abortable: llama-server keeps a deferred erase queued after its client has gone.
    if (slot.busy) await new Promise<void>((resolve) => slot.onIdle.push(resolve));
    const erased = slot.tokens;
    slot.tokens = [];
    this.#forget(erased);
    this.stats.slotErases++;
    return erased.length;
  }

  /** Drops cached prefixes of `tokens` that no other slot still holds. */
  #forget(tokens: readonly number[]): void {
    const size = this.#blockTokens;
    if (size !== undefined) {
      const held = new Set(this.#slots.flatMap((s) => this.#blockKeys(s.tokens, size)));
      for (const k of this.#blockKeys(tokens, size)) if (!held.has(k)) this.#kvBlocks.delete(k);
      return;
    }
    const isPrefixOf = (p: readonly number[], of: readonly number[]) =>
      p.length <= of.length && p.every((t, k) => of[k] === t);
    for (const [key, cached] of this.#kv) {
      if (!isPrefixOf(cached, tokens)) continue;
      if (this.#slots.some((s) => s.tokens.length > 0 && isPrefixOf(cached, s.tokens))) continue;
      this.#kv.delete(key);
      this.#kvTokens -= cached.length;
    }
  }

  /**
   * Tokens of the prompt whose KV is cached: the longest common prefix with any cached sequence
   * (like llama.cpp's prompt cache and vLLM's prefix caching). A hit refreshes the entry's LRU
   * position.
   */
  #cachedPrefix(tokens: readonly number[]): number {
    const size = this.#blockTokens;
    if (size !== undefined) {
      const keys = this.#blockKeys(tokens, size);
      let k = 0;
      while (k < keys.length && this.#kvBlocks.has(keys[k] as string)) k++;
      this.#touchBlocks(keys.slice(0, k));
      return k * size;
    }
    let best = 0;
    let bestKey: string | undefined;
    for (const [key, cached] of this.#kv) {
      const n = Math.min(cached.length, tokens.length);
      let k = 0;
      while (k < n && cached[k] === tokens[k]) k++;
      if (k > best) {
        best = k;
        bestKey = key;
      }
    }
    if (bestKey !== undefined) {
      const entry = this.#kv.get(bestKey);
      this.#kv.delete(bestKey);
      if (entry) this.#kv.set(bestKey, entry);
    }
    return best;
  }

  /** Caches a prompt's KV, evicting least recently used sequences beyond the capacity. */
  #remember(tokens: readonly number[]): void {
    const size = this.#blockTokens;
    if (size !== undefined) {
      this.#touchBlocks(this.#blockKeys(tokens, size));
      const capacity = Math.floor(this.opts.kvCapacityTokens / size);
      for (const k of this.#kvBlocks.keys()) {
        if (this.#kvBlocks.size <= capacity) break;
        this.#kvBlocks.delete(k);
        this.stats.evictions++;
      }
      return;
    }
    const key = createHash('sha1')
      .update(Buffer.from(Uint32Array.from(tokens).buffer))
      .digest('hex');
    if (this.#kv.has(key) || tokens.length > this.opts.kvCapacityTokens) return;
    this.#kv.set(key, tokens);
    this.#kvTokens += tokens.length;
    for (const [k, cached] of this.#kv) {
      if (this.#kvTokens <= this.opts.kvCapacityTokens) break;
      this.#kv.delete(k);
      this.#kvTokens -= cached.length;
      this.stats.evictions++;
    }
  }

  /** Streams generated tokens; the last item reports usage. */
  async *generate(
    prompt: string,
    o: SimGenerateOptions,
    signal: AbortSignal,
  ): AsyncGenerator<SimToken, SimFinish> {
    if (this.loading()) throw new SimError('loading', 'model is loading');
    if (this.faults.refuse === true) throw new SimError('refused', 'engine is overloaded; request refused');
    const promptTokens = this.tokenize(prompt);
    if (promptTokens.length + o.maxTokens > this.opts.ctx) {
      throw new SimError(
        'ctx',
        `prompt (${promptTokens.length} tokens) + max_tokens (${o.maxTokens}) exceeds the context length ${this.opts.ctx}`,
      );
    }
    this.stats.requests++;
    const slot = await this.#acquire(promptTokens, signal);
    o.onSlot?.(slot);
    const generated: number[] = [];
    try {
      const cached = o.cachePrompt === false ? 0 : this.#cachedPrefix(promptTokens);
      this.stats.promptTokens += promptTokens.length;
      this.stats.cachedPromptTokens += cached;
      o.onPrefill?.(cached);
      await sleep(this.prefillMs(promptTokens.length, cached), signal);
      if (o.cachePrompt !== false) this.#remember(promptTokens);
      let produced = 0;
      // Timers are coarse (about 1 ms): accumulate the pacing debt and sleep when it is worth it.
      let debtMs = 0;
      let text = '';
      const stops = (o.stop ?? []).filter((s) => s !== '');
      for (; produced < o.maxTokens;) {
        const f = this.faults;
        if (f.crash !== undefined) process.exit(f.crash);
        while (this.faults.hang === true) await sleep(50, signal);
        if (f.oomAfterTokens !== undefined && produced >= f.oomAfterTokens) {
          this.stats.errors++;
          throw new SimError('oom', 'CUDA out of memory: tried to allocate 2.00 GiB (simulated)');
        }
        debtMs += this.perTokenMs(this.running) + (f.slowTokenMs ?? 0);
        if (debtMs >= 1) {
          await sleep(debtMs, signal);
          debtMs = 0;
        }
        signal.throwIfAborted();
        this.stats.generatedTokens++;
        const token = this.#token(prompt, o.seed, o.samplerProfile ?? 'v1', produced, o.ignoreEos === true);
        generated.push(token.id);
        produced++;
        yield token;
        const done = { promptTokens: promptTokens.length, completionTokens: produced };
        if (token.special === true) return { ...done, finish: 'eos' };
        text += token.text;
        const stopString = stops.find((s) => text.endsWith(s));
        if (stopString !== undefined) return { ...done, finish: 'stop', stopString };
      }
      return { promptTokens: promptTokens.length, completionTokens: produced, finish: 'length' };
    } finally {
      // The last sampled token is never decoded, so its KV does not exist (llama-server counts alike).
      this.#release(slot, [...promptTokens, ...generated.slice(0, -1)]);
    }
  }

  get eosId(): number {
    return EOS;
  }
}
