/**
 * Supervises the llama-server processes of one pool on this host (SPEC §5): launch with the
 * device mask, wait for `/health`, run a minimal decode and read properties before declaring a
 * replica Ready (ORCH-3002), mark it Unready with the cause when its process exits, and restart
 * a crashed replica with exponential backoff and jitter.
 */
import type { ResolvedPool } from '../config/resolved-config.js';
import { LlamaCppAdapter } from '../engines/llamacpp/adapter.js';
import type { Logger } from '../util/logger.js';
import { EngineProcess, describeExit } from './engine-process.js';
import { freePort } from './free-port.js';
import type { PoolSupervisor, ReplicaState, ReplicaView } from './replica.js';

export interface LlamaCppSupervisorOptions {
  readonly pool: ResolvedPool;
  readonly binaryPath: string;
  readonly modelDigest?: string | undefined;
  readonly logger: Logger;
  readonly engineVersion?: string | undefined;
}

interface Replica {
  readonly id: string;
  state: ReplicaState;
  adapter: LlamaCppAdapter;
  props: ReplicaView['props'];
  process: EngineProcess | undefined;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

const PROBE_INTERVAL_MS = 50;
const RESTART_BASE_MS = 1_000;
const RESTART_MAX_MS = 30_000;

export function llamaServerArgs(pool: ResolvedPool, port: number): string[] {
  const l = pool.launch;
  const args = [
    '-m',
    pool.model.path,
    '--host',
    l.host,
    '--port',
    String(port),
    // `-c` is the whole KV cache; each of the `parallel` slots gets ctx tokens.
    '-c',
    String(pool.ctx * l.parallel),
    '-np',
    String(l.parallel),
    '-t',
    String(l.threads),
    l.contBatching ? '--cont-batching' : '--no-cont-batching',
    '-ngl',
    String(l.gpuLayers),
    '--metrics',
  ];
  if (pool.tensorSplit !== undefined) args.push('--tensor-split', pool.tensorSplit.join(','));
  return [...args, ...l.extraArgs];
}

/** `CUDA_VISIBLE_DEVICES` from the device mask; CPU pools see no GPU at all. */
export function engineEnv(pool: ResolvedPool, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, CUDA_VISIBLE_DEVICES: pool.devices === 'cpu' ? '' : pool.devices.join(',') };
}

export class LlamaCppPoolSupervisor implements PoolSupervisor {
  readonly poolId: string;
  readonly #o: LlamaCppSupervisorOptions;
  readonly #replicas: Replica[];
  readonly #listeners = new Set<(r: ReplicaView) => void>();
  #stopping = false;

  constructor(opts: LlamaCppSupervisorOptions) {
    this.#o = opts;
    this.poolId = opts.pool.id;
    this.#replicas = Array.from({ length: opts.pool.replicas }, (_, i) => ({
      id: `${opts.pool.id}-r${i}`,
      state: { kind: 'stopped' },
      adapter: new LlamaCppAdapter({ baseUrl: 'http://127.0.0.1:0' }),
      props: undefined,
      process: undefined,
      restarts: 0,
      restartTimer: undefined,
    }));
  }

  replicas(): readonly ReplicaView[] {
    return this.#replicas.map((r) => this.#view(r));
  }

  onChange(listener: (r: ReplicaView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async start(): Promise<void> {
    await Promise.all(this.#replicas.map((r) => this.#launch(r)));
  }

  /** The engine process of a replica (operators' diagnostics, failure tests). */
  processOf(replicaId: string): EngineProcess | undefined {
    return this.#replicas.find((r) => r.id === replicaId)?.process;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#replicas.map(async (r) => {
        clearTimeout(r.restartTimer);
        await r.process?.stop();
        await r.adapter.close();
        this.#set(r, { kind: 'stopped' });
      }),
    );
  }

  #view(r: Replica): ReplicaView {
    return { id: r.id, poolId: this.poolId, state: r.state, adapter: r.adapter, props: r.props };
  }

  #set(r: Replica, state: ReplicaState): void {
    r.state = state;
    const fields = { event: 'replica.state', pool_id: this.poolId, replica_id: r.id, state: state.kind };
    if (state.kind === 'unready')
      this.#o.logger.warn({ ...fields, cause: state.cause }, `replica ${r.id} unready: ${state.cause}`);
    else this.#o.logger.info(fields, `replica ${r.id} ${state.kind}`);
    for (const l of this.#listeners) l(this.#view(r));
  }

  async #launch(r: Replica): Promise<void> {
    if (this.#stopping) return;
    const { pool, logger } = this.#o;
    this.#set(r, { kind: 'starting' });
    const port = await freePort(pool.launch.host);
    const proc = new EngineProcess({
      binary: this.#o.binaryPath,
      args: llamaServerArgs(pool, port),
      env: engineEnv(pool),
      logger: logger.child({ pool_id: pool.id, replica_id: r.id }),
    });
    r.process = proc;
    const host = pool.launch.host.includes(':') ? `[${pool.launch.host}]` : pool.launch.host;
    await r.adapter.close();
    r.adapter = new LlamaCppAdapter({
      baseUrl: `http://${host}:${port}`,
      modelDigest: this.#o.modelDigest,
      connections: pool.launch.parallel + 4,
    });
    r.props = undefined;
    this.#set(r, { kind: 'preloading' });
    const cause = await this.#preloadAndSelfTest(r, proc);
    if (cause !== undefined) {
      await proc.stop(500);
      if (!this.#stopping) this.#set(r, { kind: 'unready', cause });
      return;
    }
    this.#set(r, { kind: 'ready' });
    void proc.exited.then((exit) => {
      if (this.#stopping || r.process !== proc) return;
      const last = proc.lastError();
      this.#set(r, { kind: 'unready', cause: `${describeExit(exit)}${last ? `: ${last}` : ''}` });
      this.#scheduleRestart(r);
    });
  }

  /** Returns undefined when the replica passed its startup self-test, else the cause. */
  async #preloadAndSelfTest(r: Replica, proc: EngineProcess): Promise<string | undefined> {
    const deadline = Date.now() + this.#o.pool.launch.startupTimeoutMs;
    const exitCause = () => {
      const exit = proc.exit;
      if (!exit) return undefined;
      const last = proc.lastError();
      return `${describeExit(exit)} during preload${last ? `: ${last}` : ''}`;
    };
    for (;;) {
      const gone = exitCause();
      if (gone) return gone;
      if (this.#stopping) return 'stopping';
      if (Date.now() > deadline) return `not healthy within ${this.#o.pool.launch.startupTimeoutMs} ms`;
      const health = await r.adapter.probe(AbortSignal.timeout(2_000)).catch(() => undefined);
      if (health?.ready) break;
      await new Promise((res) => setTimeout(res, PROBE_INTERVAL_MS));
    }
    this.#set(r, { kind: 'self-test' });
    try {
      const signal = AbortSignal.timeout(Math.max(1_000, deadline - Date.now()));
      // Minimal decode: one token through the real generation path.
      let tokens = 0;
      for await (const ev of r.adapter.generate(
        {
          prompt: 'ok',
          maxTokens: 1,
          seed: 0,
          determinism: 'strict',
          samplerProfileVersion: 'v1',
          cachePrompt: false,
          ignoreEos: true,
        },
        signal,
      )) {
        if (ev.kind === 'tokens') tokens += ev.count;
      }
      if (tokens < 1) return 'self-test decode produced no token';
      r.props = await r.adapter.properties(signal);
      return undefined;
    } catch (err) {
      return exitCause() ?? `self-test failed: ${(err as Error).message}`;
    }
  }

  #scheduleRestart(r: Replica): void {
    const base = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** r.restarts);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    r.restarts++;
    this.#o.logger.warn(
      { event: 'replica.restart_scheduled', replica_id: r.id, delay_ms: delay, restarts: r.restarts },
      `restarting ${r.id} in ${delay} ms`,
    );
    r.restartTimer = setTimeout(() => void this.#launch(r), delay);
    r.restartTimer.unref();
  }
}
