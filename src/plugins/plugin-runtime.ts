/**
 * One loaded plugin at run time: its worker, its state and counters. Calls are serialized (one
 * instance, one call at a time; the deadline of a call starts when it is handed to the worker).
 * A timeout terminates the worker and a fresh one is started for the next call; a plugin whose
 * calls keep failing is quarantined — skipped — until it is loaded again.
 */
import { performance } from 'node:perf_hooks';
import type { LoadedPlugin } from './plugin-loader.js';
import { PluginWorker } from './plugin-worker.js';

/** Hook numbers of ABI v1 (the first argument of `llorch_decide`). */
export const HOOK_NUMBERS = { admission: 1, placement: 2 } as const;

export type PluginState = 'active' | 'quarantined' | 'failed';

/** Why a call fell back to the built-in policy (the `reason` label of `plugin_fallbacks_total`). */
export type FallbackReason = 'timeout' | 'trap' | 'malformed' | 'unavailable';

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
  };
  #state: PluginState = 'active';
  #worker: Promise<PluginWorker> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Told when the state changes (quarantine, failure). */
  onState: (state: PluginState, why: string) => void = () => undefined;

  constructor(plugin: LoadedPlugin) {
    this.plugin = plugin;
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
    await this.#worker;
  }

  /** The host allowance of the current worker, ms (added to `budget_ms`). */
  async allowanceMs(): Promise<number> {
    return (await this.#worker)?.allowanceMs ?? 0;
  }

  /** Calls the plugin, one call at a time. */
  call(hook: keyof typeof HOOK_NUMBERS, snapshot: string): Promise<RawOutcome> {
    const run = this.#chain.then(() => this.#call(hook, snapshot));
    this.#chain = run.catch(() => undefined);
    return run;
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
    const w = await this.#worker?.catch(() => undefined);
    await w?.terminate();
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
    // The instance is in an unknown state after an overrun or a trap: the next call gets a fresh one.
    void worker.terminate();
    this.#worker = undefined;
    if (outcome.kind === 'timeout') {
      this.counters.timeouts += 1;
      const detail = `no decision within budget_ms ${this.plugin.config.budgetMs} + host allowance ${worker.allowanceMs} ms`;
      return this.#fallback('timeout', detail, latency());
    }
    this.counters.traps += 1;
    return this.#fallback('trap', outcome.message, latency());
  }

  #current(): Promise<PluginWorker> {
    this.#worker ??= PluginWorker.start(this.plugin.module, this.id);
    return this.#worker;
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
      // A skipped plugin needs no instance: its thread and memory are released now.
      const worker = this.#worker;
      this.#worker = undefined;
      void worker?.then((w) => w.terminate()).catch(() => undefined);
      this.onState(
        'quarantined',
        `${this.counters.consecutiveFailures} consecutive failed calls (last: ${detail}); skipped until reloaded`,
      );
    }
  }
}
