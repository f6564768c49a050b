/**
 * Supervises the engine processes of one pool on this host (SPEC §5), whatever the engine: launch
 * with the device mask, wait for health, run a minimal decode and read properties before
 * declaring a replica Ready (ORCH-3002), keep checking the health of Ready replicas, mark a
 * replica Unready with the cause when it stops answering or exits, and restart a crashed replica
 * with exponential backoff and jitter. A replica whose engine version differs from the replica
 * set's is refused (SPEC §14: determinism holds only within one version).
 */
import type { ResolvedPool } from '../config/resolved-config.js';
import type { EngineAdapter } from '../engines/adapter.js';
import type { Logger } from '../util/logger.js';
import type { EngineLauncher } from './engine-launcher.js';
import { EngineProcess, describeExit } from './engine-process.js';
import { freePort } from './free-port.js';
import type { PoolSupervisor, ReplicaState, ReplicaView } from './replica.js';

export interface EngineSupervisorOptions {
  readonly pool: ResolvedPool;
  readonly launcher: EngineLauncher;
  readonly logger: Logger;
}

interface Replica {
  readonly index: number;
  readonly id: string;
  state: ReplicaState;
  adapter: EngineAdapter;
  props: ReplicaView['props'];
  process: EngineProcess | undefined;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
  healthTimer: NodeJS.Timeout | undefined;
}

const PROBE_INTERVAL_MS = 50;
const RESTART_BASE_MS = 1_000;
const RESTART_MAX_MS = 30_000;

export class EnginePoolSupervisor implements PoolSupervisor {
  readonly poolId: string;
  readonly simulated: boolean;
  readonly #o: EngineSupervisorOptions;
  readonly #replicas: Replica[];
  readonly #listeners = new Set<(r: ReplicaView) => void>();
  /** Engine version of the replica set, fixed by the first replica that passed its self-test. */
  #setVersion: string | undefined;
  #stopping = false;

  constructor(opts: EngineSupervisorOptions) {
    this.#o = opts;
    this.poolId = opts.pool.id;
    this.simulated = opts.launcher.simulated;
    this.#replicas = Array.from({ length: opts.pool.replicas }, (_, index) => ({
      index,
      id: `${opts.pool.id}-r${index}`,
      state: { kind: 'stopped' },
      adapter: opts.launcher.adapter([]),
      props: undefined,
      process: undefined,
      restarts: 0,
      restartTimer: undefined,
      healthTimer: undefined,
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
        clearInterval(r.healthTimer);
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
    const { pool, logger, launcher } = this.#o;
    this.#set(r, { kind: 'starting' });
    const ports: number[] = [];
    while (ports.length < launcher.portCount) {
      const p = await freePort(pool.launch.host);
      if (!ports.includes(p)) ports.push(p);
    }
    const cmd = launcher.command(r.index, ports);
    const proc = new EngineProcess({
      binary: cmd.binary,
      args: cmd.args,
      env: cmd.env,
      logger: logger.child({ pool_id: pool.id, replica_id: r.id }),
    });
    r.process = proc;
    await r.adapter.close();
    r.adapter = launcher.adapter(ports);
    r.props = undefined;
    r.state = { kind: 'preloading' };
    logger.info(
      {
        event: 'replica.state',
        pool_id: pool.id,
        replica_id: r.id,
        state: 'preloading',
        engine_url: r.adapter.baseUrl,
        simulated: launcher.simulated,
      },
      `replica ${r.id} preloading (${launcher.simulated ? 'simulated ' : ''}${pool.engine} at ${r.adapter.baseUrl})`,
    );
    for (const l of this.#listeners) l(this.#view(r));
    const cause = await this.#preloadAndSelfTest(r, proc);
    if (cause !== undefined) {
      await proc.stop(500);
      if (!this.#stopping) this.#set(r, { kind: 'unready', cause });
      return;
    }
    this.#set(r, { kind: 'ready' });
    this.#watchHealth(r, proc);
    void proc.exited.then((exit) => {
      if (this.#stopping || r.process !== proc) return;
      clearInterval(r.healthTimer);
      const last = proc.lastError();
      this.#set(r, {
        kind: 'unready',
        cause: `${describeExit(exit)}${last ? `: ${last}` : ''}`,
        retrying: true,
      });
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
      const props = await r.adapter.properties(signal);
      r.props = props;
      this.#setVersion ??= props.engineVersion;
      if (props.engineVersion !== this.#setVersion) {
        return (
          `engine_version '${props.engineVersion}' differs from the replica set's '${this.#setVersion}': ` +
          'a replica set never mixes engine versions (determinism, SPEC §14)'
        );
      }
      return undefined;
    } catch (err) {
      return exitCause() ?? `self-test failed: ${(err as Error).message}`;
    }
  }

  /** Ready replicas keep being probed; one that stops answering or reports loading goes Unready. */
  #watchHealth(r: Replica, proc: EngineProcess): void {
    let probing = false;
    r.healthTimer = setInterval(() => {
      if (probing || this.#stopping || r.process !== proc || proc.exit) return;
      probing = true;
      r.adapter
        .probe(AbortSignal.timeout(Math.max(1_000, this.#o.pool.launch.healthIntervalMs)))
        .then((h) => {
          if (this.#stopping || r.process !== proc || proc.exit) return;
          if (h.ready && r.state.kind === 'unready') this.#set(r, { kind: 'ready' });
          else if (!h.ready && r.state.kind === 'ready') {
            const what = h.loading
              ? 'engine reports loading'
              : h.live
                ? 'engine health check failed'
                : 'engine not answering';
            this.#set(r, {
              kind: 'unready',
              cause: `${what}${h.detail ? ` (${h.detail})` : ''}`,
              retrying: true,
            });
          }
        })
        .catch(() => undefined)
        .finally(() => (probing = false));
    }, this.#o.pool.launch.healthIntervalMs);
    r.healthTimer.unref();
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
