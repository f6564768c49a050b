/**
 * One plugin instance in its own worker thread. The main thread never runs plugin code: it posts
 * a call and waits asynchronously, and a call that outlives its deadline is ended by terminating
 * the worker (V8 stops even a tight loop in WebAssembly), so an overrunning plugin can cost
 * admission at most its deadline and never blocks the event loop.
 */
import { performance } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { WasmModule } from './wasm-api.js';
import { WORKER_SOURCE } from './worker-source.js';

/** How one call ended. */
export type CallOutcome =
  | { readonly kind: 'result'; readonly output: string; readonly elapsedMs: number }
  | { readonly kind: 'trap'; readonly message: string }
  | { readonly kind: 'timeout' };

type Reply =
  | { type: 'ready'; abi: number }
  | { type: 'error'; message: string }
  | { type: 'pong'; seq: number }
  | { type: 'result'; seq: number; output: string; elapsedMs: number }
  | { type: 'trap'; seq: number; message: string };

/** Bounds of the host allowance added to a plugin's budget (see {@link PluginWorker.allowanceMs}). */
export const HOST_ALLOWANCE = { minMs: 2, maxMs: 20, pingRounds: 5, factor: 4 } as const;

export class PluginWorker {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #waiting = new Map<number, (r: Reply) => void>();
  #seq = 0;
  #exited = false;
  /**
   * Milliseconds added to the budget for the round trip itself (posting the call, waking the
   * worker, posting the answer): {@link HOST_ALLOWANCE}.factor × the median of a few ping round
   * trips measured at start, within [minMs, maxMs].
   */
  allowanceMs: number = HOST_ALLOWANCE.minMs;

  private constructor(worker: Worker, port: MessagePort) {
    this.#worker = worker;
    this.#port = port;
    port.on('message', (r: Reply) => this.#deliver(r));
    // An error inside the worker ends it ('exit' follows); unhandled, it would end the process.
    worker.on('error', () => undefined);
    worker.on('exit', () => {
      this.#exited = true;
      for (const resolve of this.#waiting.values())
        resolve({ type: 'trap', seq: -1, message: 'worker exited' });
      this.#waiting.clear();
    });
    // Idle plugins must not keep the process alive; a pending call or ping does (see #expect).
    worker.unref();
    port.unref();
  }

  /** Starts an instance of `module`; rejects with the module's own start failure. */
  static async start(module: WasmModule, id: string): Promise<PluginWorker> {
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { port: port2, module, id },
      transferList: [port2],
      // Linear memory is bounded by the module's declared maximum; this bounds the JS around it.
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
    });
    const first = await new Promise<Reply>((resolve) => {
      port1.once('message', resolve);
      worker.once('error', (err) => resolve({ type: 'error', message: err.message }));
      worker.once('exit', (code) => resolve({ type: 'error', message: `worker exited with code ${code}` }));
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      port1.close();
      throw new Error(first.type === 'error' ? first.message : 'unexpected first message');
    }
    if (first.abi !== 1) {
      await worker.terminate();
      port1.close();
      throw new Error(`llorch_abi_version() returned ${first.abi}; this host speaks ABI 1`);
    }
    const w = new PluginWorker(worker, port1);
    await w.#measureAllowance();
    return w;
  }

  /** Runs `llorch_decide(hook, snapshot)`, ending it (and this worker) after `deadlineMs`. */
  call(hook: number, input: string, deadlineMs: number): Promise<CallOutcome> {
    if (this.#exited) return Promise.resolve({ kind: 'trap', message: 'worker exited' });
    const seq = ++this.#seq;
    return new Promise<CallOutcome>((resolve) => {
      const timer = setTimeout(() => {
        // The timer may fire late when the event loop was busy; an answer that came in time is
        // then already queued on the port, so it is taken before the worker is blamed.
        for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port))
          this.#deliver(m.message as Reply);
        if (!this.#waiting.has(seq)) return;
        this.#waiting.delete(seq);
        if (this.#waiting.size === 0) this.#port.unref();
        resolve({ kind: 'timeout' });
        void this.terminate();
      }, deadlineMs);
      this.#expect(seq, (r) => {
        clearTimeout(timer);
        if (r.type === 'result') resolve({ kind: 'result', output: r.output, elapsedMs: r.elapsedMs });
        else resolve({ kind: 'trap', message: r.type === 'trap' ? r.message : 'unexpected reply' });
      });
      this.#port.postMessage({ type: 'call', seq, hook, input });
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  async terminate(): Promise<void> {
    if (this.#exited) return;
    this.#exited = true;
    await this.#worker.terminate();
    this.#port.close();
  }

  #expect(seq: number, resolve: (r: Reply) => void): void {
    if (this.#waiting.size === 0) this.#port.ref();
    this.#waiting.set(seq, resolve);
  }

  #deliver(r: Reply): void {
    if (!('seq' in r)) return;
    const resolve = this.#waiting.get(r.seq);
    if (!resolve) return;
    this.#waiting.delete(r.seq);
    if (this.#waiting.size === 0) this.#port.unref();
    resolve(r);
  }

  async #measureAllowance(): Promise<void> {
    const rtts: number[] = [];
    for (let i = 0; i < HOST_ALLOWANCE.pingRounds; i++) {
      const seq = ++this.#seq;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        this.#expect(seq, () => resolve());
        this.#port.postMessage({ type: 'ping', seq });
      });
      rtts.push(performance.now() - t0);
    }
    rtts.sort((a, b) => a - b);
    const median = rtts[Math.floor(rtts.length / 2)] ?? 0;
    this.allowanceMs = Math.min(
      HOST_ALLOWANCE.maxMs,
      Math.max(HOST_ALLOWANCE.minMs, Math.ceil(HOST_ALLOWANCE.factor * median)),
    );
  }
}
