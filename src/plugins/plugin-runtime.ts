/**
 * One loaded plugin at run time: its worker, its state and counters. Calls are serialized (one
 * instance, one call at a time; the deadline of a call starts when it is handed to the worker).
 * A call that waits behind others for longer than its own deadline is not made: the built-in
 * policy decides it (`busy`), so a submission never waits more than twice the deadline however
 * many arrive at once. A timeout or trap terminates the worker; the next call goes to a warm
 * spare started after the first failure, so an overrunning plugin costs its deadline and no
 * worker start. A plugin whose calls keep failing is quarantined — skipped — until it is loaded
 * again.
 */
import { performance } from 'node:perf_hooks';
import type { LoadedPlugin } from './plugin-loader.js';
import { HOST_ALLOWANCE, PluginWorker } from './plugin-worker.js';

/** Hook numbers of ABI v1 (the first argument of `llorch_decide`). */
export const HOOK_NUMBERS = { admission: 1, placement: 2 } as const;

export type PluginState = 'active' | 'quarantined' | 'failed';

/** Why a call fell back to the built-in policy (the `reason` label of `plugin_fallbacks_total`). */
export type FallbackReason = 'timeout' | 'trap' | 'malformed' | 'unavailable' | 'busy';

/** How one call to a plugin ended, before the decision's meaning is checked. */
export type RawOutcome =
  | { readonly kind: 'output'; readonly output: string; readonly latencyMs: number }
  | {
      readonly kind: 'fallback';
      readonly reason: FallbackReason;
      readonly detail: string;
      readonly latencyMs: number;
    }
  | { readonly kind: 'skipped' };

export interface PluginCounters {
  calls: number;
  ok: number;
  fallbacks: number;
  skipped: number;
  consecutiveFailures: number;
  timeouts: number;
  traps: number;
  malformed: number;
  /** Calls not made because they waited their deadline behind others (not failures). */
  busy: number;
}

export class PluginRuntime {
  readonly plugin: LoadedPlugin;
  /** When this version was loaded (ISO 8601), shown by `GET /v1/plugins`. */
  readonly loadedAt = new Date().toISOString();
  readonly counters: PluginCounters = {
    calls: 0,
    ok: 0,
    fallbacks: 0,
    skipped: 0,
    consecutiveFailures: 0,
    timeouts: 0,
    traps: 0,
    malformed: 0,
    busy: 0,
  };
  #state: PluginState = 'active';
  #worker: Promise<PluginWorker> | undefined;
  /** A started instance for the call after a failure; kept from the first failure on. */
  #spare: Promise<PluginWorker> | undefined;
  /** The current worker's deadline per call (budget + its measured allowance). */
  #deadlineMs: number;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Told when the state changes (quarantine, failure). */
  onState: (state: PluginState, why: string) => void = () => undefined;

  constructor(plugin: LoadedPlugin) {
    this.plugin = plugin;
    this.#deadlineMs = plugin.config.budgetMs + HOST_ALLOWANCE.maxMs;
  }

  get state(): PluginState {
    return this.#state;
  }

  get id(): string {
    return this.plugin.config.id;
  }

  get version(): string {
    return this.plugin.manifest.version;
  }

  /** Starts the first worker; rejects when the module cannot be instantiated (load-time refusal). */
  async start(): Promise<void> {
    this.#worker = PluginWorker.start(this.plugin.module, this.id);
    this.#deadlineMs = this.plugin.config.budgetMs + (await this.#worker).allowanceMs;
  }

  /** The host allowance of the current worker, ms (added to `budget_ms`). */
  async allowanceMs(): Promise<number> {
    return (await this.#worker)?.allowanceMs ?? 0;
  }

  /**
   * Calls the plugin, one call at a time. A call whose turn has not come within its deadline
   * resolves then as a `busy` fallback and is dropped from the line.
   */
  call(hook: keyof typeof HOOK_NUMBERS, snapshot: string): Promise<RawOutcome> {
    return new Promise<RawOutcome>((resolve) => {
      const waitMs = this.#deadlineMs;
      const t0 = performance.now();
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        this.counters.busy += 1;
        this.counters.fallbacks += 1;
        resolve({
          kind: 'fallback',
          reason: 'busy',
          detail: `waited ${waitMs} ms (its deadline) behind other calls to this plugin`,
          latencyMs: performance.now() - t0,
        });
      }, waitMs);
      const run = this.#chain.then(async () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(await this.#call(hook, snapshot));
      });
      this.#chain = run.catch(() => undefined);
    });
  }

  /** Counts a decision the host found malformed after the call returned (schema, bounds). */
  malformed(): void {
    this.counters.malformed += 1;
    this.#failed('malformed decision');
  }

  /** Counts a call whose decision was used. */
  succeeded(): void {
    this.counters.ok += 1;
    this.counters.consecutiveFailures = 0;
  }

  /**
   * Retires a replaced version: the calls already handed to it finish on its worker, then it is
   * closed. No new call reaches it (the host no longer lists it), so the chain stops growing.
   */
  async retire(): Promise<void> {
    let last: Promise<unknown>;
    do {
      last = this.#chain;
      await last;
    } while (last !== this.#chain);
    await this.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pending = [this.#worker, this.#spare].filter((w) => w !== undefined);
    this.#spare = undefined;
    const workers = await Promise.all(pending.map((w) => w.catch(() => undefined)));
    await Promise.all(workers.map((w) => w?.terminate() ?? Promise.resolve()));
  }

  async #call(hook: keyof typeof HOOK_NUMBERS, snapshot: string): Promise<RawOutcome> {
    if (this.#state !== 'active' || this.#closed) {
      this.counters.skipped += 1;
      return { kind: 'skipped' };
    }
    this.counters.calls += 1;
    const t0 = performance.now();
    const latency = () => performance.now() - t0;
    let worker: PluginWorker;
    try {
      worker = await this.#current();
    } catch (err) {
      this.#state = 'failed';
      this.onState('failed', `worker does not start: ${(err as Error).message}`);
      return this.#fallback('unavailable', (err as Error).message, latency());
    }
    const outcome = await worker.call(
      HOOK_NUMBERS[hook],
      snapshot,
      this.plugin.config.budgetMs + worker.allowanceMs,
    );
    if (outcome.kind === 'result') return { kind: 'output', output: outcome.output, latencyMs: latency() };
    // The instance is in an unknown state after an overrun or a trap: the next call gets the warm
    // spare (a fresh instance, started now after the first failure), and another spare is started
    // for the failure after that.
    void worker.terminate();
    if (!this.#closed) {
      this.#worker = this.#spare ?? this.#startWorker();
      this.#spare = this.#startWorker();
    }
    if (outcome.kind === 'timeout') {
      this.counters.timeouts += 1;
      const detail = `no decision within budget_ms ${this.plugin.config.budgetMs} + host allowance ${worker.allowanceMs} ms`;
      return this.#fallback('timeout', detail, latency());
    }
    this.counters.traps += 1;
    return this.#fallback('trap', outcome.message, latency());
  }

  #current(): Promise<PluginWorker> {
    this.#worker ??= this.#startWorker();
    return this.#worker.then((w) => {
      this.#deadlineMs = this.plugin.config.budgetMs + w.allowanceMs;
      return w;
    });
  }

  #startWorker(): Promise<PluginWorker> {
    const w = PluginWorker.start(this.plugin.module, this.id);
    // A spare that fails to start is found out when it is used (the call falls back `unavailable`).
    w.catch(() => undefined);
    return w;
  }

  #fallback(reason: FallbackReason, detail: string, latencyMs: number): RawOutcome {
    this.#failed(detail);
    return { kind: 'fallback', reason, detail, latencyMs };
  }

  #failed(detail: string): void {
    this.counters.fallbacks += 1;
    this.counters.consecutiveFailures += 1;
    if (this.#state === 'active' && this.counters.consecutiveFailures >= this.plugin.config.quarantineAfter) {
      this.#state = 'quarantined';
      // A skipped plugin needs no instance: its threads and memory are released now.
      for (const worker of [this.#worker, this.#spare])
        void worker?.then((w) => w.terminate()).catch(() => undefined);
      this.#worker = undefined;
      this.#spare = undefined;
      this.onState(
        'quarantined',
        `${this.counters.consecutiveFailures} consecutive failed calls (last: ${detail}); skipped until reloaded`,
      );
    }
  }
}
