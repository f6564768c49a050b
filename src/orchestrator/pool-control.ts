/**
 * Pool lifecycle operations of the control plane (SPEC §6): drain, reload (atomic drain +
 * replace, rolled back automatically when the new model does not come up), and rollback of a
 * successful reload. Queued tasks are never lost: they wait through a reload and run on the new
 * model; in-flight tasks get the deadline to finish, then end with a typed error.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedPool } from '../config/resolved-config.js';
import type { ErrorData } from '../domain/events.js';
import { OrchError } from '../errors/orch-error.js';
import type { PoolSupervisor } from '../pool/replica.js';
import type { Logger } from '../util/logger.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { TaskRecord, TaskView } from './task-record.js';

export interface PoolOps {
  readonly logger: Logger;
  /** Builds (does not start) a supervisor for a pool configuration. */
  readonly createSupervisor: (pool: ResolvedPool) => Promise<PoolSupervisor>;
  /** Live tasks of the pool. */
  tasksOf(pool: PoolRuntime): TaskRecord[];
  /** Ends a queued task (removing it from the queue). */
  endQueued(pool: PoolRuntime, task: TaskRecord, error: ErrorData): void;
  /** Aborts a running task; it ends with POOL_UNAVAILABLE. */
  abortRunning(task: TaskRecord): void;
  /** Installs a new supervisor for the pool (subscriptions follow). */
  swapSupervisor(pool: PoolRuntime, sup: PoolSupervisor): void;
  pump(pool: PoolRuntime): void;
  /** Moves a queued task of a draining pool to another member of its replica set; false if none takes it. */
  handOver?(pool: PoolRuntime, task: TaskView): boolean;
  /**
   * Reloads a pool whose engines run on other hosts (through their pool-managerd); the cause on
   * failure. `digest` is the catalog entry's, when the reference named one (the node verifies it).
   */
  remoteReload?(pool: PoolRuntime, modelPath: string, digest?: string): Promise<string | undefined>;
  /** Stops the engines of a drained pool on its hosts (frees their GPUs); the cause on failure. */
  remoteStop?(pool: PoolRuntime): Promise<string | undefined>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `new_model_ref` as a path on the pool's host or a `file:` URL (where no catalog resolves references). */
export function modelPathOf(ref: string): string {
  return ref.startsWith('file:') ? fileURLToPath(ref) : resolve(ref);
}

export class PoolControl {
  readonly #ops: PoolOps;

  constructor(ops: PoolOps) {
    this.#ops = ops;
  }

  /**
   * Stop placing work; in-flight tasks get `deadlineMs`; queued ones move to another member of the
   * replica set, or end now (the pool is going away).
   */
  drain(pool: PoolRuntime, deadlineMs: number): void {
    pool.paused = true;
    pool.draining = true;
    pool.lifecycle = { operation: 'drain', state: 'in_progress' };
    for (const task of this.#ops.tasksOf(pool)) {
      if (task.state.kind !== 'queued') continue;
      // Another member of the replica set takes it, where one takes work (SPEC §17 §4).
      if (this.#ops.handOver?.(pool, task) === true) continue;
      this.#ops.endQueued(pool, task, {
        code: 'POOL_UNAVAILABLE',
        message: `pool '${pool.id}' is draining`,
        engine: pool.config.engine,
        retriable: true,
      });
    }
    void this.#finishInFlight(pool, deadlineMs).then(async () => {
      // A drained remote pool gives its GPUs back; a later reload starts it again.
      const cause = pool.config.hosts.length > 0 ? await this.#ops.remoteStop?.(pool) : undefined;
      if (pool.lifecycle?.operation === 'drain') {
        pool.lifecycle.state = cause === undefined ? 'succeeded' : 'failed';
        if (cause !== undefined) pool.lifecycle.cause = cause;
      }
      this.#ops.logger.info({ event: 'pool.drained', pool_id: pool.id }, `pool ${pool.id} drained`);
    });
  }

  /** Starts a reload (or rollback); resolves when it has finished either way. */
  reload(
    pool: PoolRuntime,
    target: { modelRef: string } | { model: ResolvedPool['model'] } | { rollback: true },
    deadlineMs: number,
  ): Promise<void> {
    if (pool.reloading)
      throw new OrchError('CONFLICT', `pool '${pool.id}' is already reloading`, {
        poolId: pool.id,
        retriable: true,
      });
    let model: ResolvedPool['model'];
    if ('rollback' in target) {
      if (!pool.previousModel)
        throw new OrchError('CONFLICT', `pool '${pool.id}' has no successful reload to roll back`, {
          poolId: pool.id,
        });
      model = pool.previousModel;
    } else if ('model' in target) {
      // Resolved (and trust-checked) by the catalog: `reload-target.ts`.
      model = target.model;
    } else {
      model = { ...pool.config.model, path: modelPathOf(target.modelRef), digest: undefined };
    }
    const operation = 'rollback' in target ? 'rollback' : 'reload';
    pool.reloading = true;
    pool.paused = true;
    pool.lifecycle = {
      operation,
      state: 'in_progress',
      modelRef: model.path,
      previousModelRef: pool.config.model.path,
    };
    return this.#reload(pool, model, deadlineMs).finally(() => {
      pool.reloading = false;
      pool.paused = pool.draining;
      this.#ops.pump(pool);
    });
  }

  async #reload(pool: PoolRuntime, model: ResolvedPool['model'], deadlineMs: number): Promise<void> {
    const log = this.#ops.logger;
    const old = { config: pool.config, supervisor: pool.supervisor };
    await this.#finishInFlight(pool, deadlineMs);
    if (pool.config.hosts.length > 0 && this.#ops.remoteReload) {
      // The hosts swap their engines themselves (and roll back on failure); replicas re-report.
      const cause = await this.#ops.remoteReload(pool, model.path, model.digest);
      const lc = pool.lifecycle;
      if (cause === undefined) {
        pool.previousModel = old.config.model;
        pool.config = { ...old.config, model };
        pool.draining = false;
      }
      if (lc) {
        lc.state = cause === undefined ? 'succeeded' : 'rolled_back';
        if (cause !== undefined) lc.cause = cause;
      }
      return;
    }
    await old.supervisor.stop();
    const next: ResolvedPool = { ...old.config, model };
    const cause = await this.#bringUp(pool, next);
    const lc = pool.lifecycle;
    if (cause === undefined) {
      pool.previousModel = old.config.model;
      pool.draining = false;
      if (lc) lc.state = 'succeeded';
      log.info(
        { event: 'pool.reloaded', pool_id: pool.id, model: model.path },
        `pool ${pool.id} now serves ${model.path}`,
      );
      return;
    }
    // Roll back: the old model comes back on the same devices.
    log.warn(
      { event: 'pool.reload_failed', pool_id: pool.id, cause },
      `reload of ${pool.id} failed, rolling back: ${cause}`,
    );
    const back = await this.#bringUp(pool, old.config);
    if (lc) {
      lc.state = back === undefined ? 'rolled_back' : 'failed';
      lc.cause = back === undefined ? cause : `${cause}; rollback failed too: ${back}`;
    }
  }

  /** Starts a supervisor for `config` and installs it; the cause when no replica became ready. */
  async #bringUp(pool: PoolRuntime, config: ResolvedPool): Promise<string | undefined> {
    let sup: PoolSupervisor;
    try {
      sup = await this.#ops.createSupervisor(config);
    } catch (err) {
      return (err as Error).message;
    }
    pool.config = config;
    this.#ops.swapSupervisor(pool, sup);
    await sup.start();
    const replicas = sup.replicas();
    if (replicas.some((r) => r.state.kind === 'ready')) return undefined;
    const cause = replicas
      .map((r) => (r.state.kind === 'unready' ? r.state.cause : r.state.kind))
      .find((c) => c !== undefined);
    await sup.stop();
    return cause ?? 'no replica became ready';
  }

  /** Waits for running tasks up to `deadlineMs`, then aborts the rest (typed error). */
  async #finishInFlight(pool: PoolRuntime, deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (pool.running.size > 0 && Date.now() < until) await sleep(20);
    for (const task of this.#ops.tasksOf(pool))
      if (task.state.kind !== 'queued' && !task.terminal) this.#ops.abortRunning(task);
    while (pool.running.size > 0) await sleep(10);
  }
}
