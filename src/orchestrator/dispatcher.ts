/**
 * Turns queue decisions into engine calls: late binding to a replica (ORCH-3007), the token relay
 * into the task's event log, watchdog timeouts (ORCH-3016) and cancellation through AbortSignal.
 */
import type { ErrorData } from '../domain/events.js';
import type { Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { ReplicaView } from '../pool/replica.js';
import { chooseReplica } from '../scheduler/placement.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { Logger } from '../util/logger.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { AbortCause, TaskRecord } from './task-record.js';
import type { TaskLifecycle } from './task-lifecycle.js';

export interface DispatcherOptions {
  readonly lifecycle: TaskLifecycle;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly sessions: SessionStore;
  readonly taskOf: (id: string) => TaskRecord | undefined;
  /** Called whenever a pool's queue changed (for gauges). */
  readonly onQueueChange: (pool: PoolRuntime) => void;
}

/** Warm replicas at or above this utilization lose to cooler ones (ORCH-3009). */
const OVERLOAD_RATIO = 0.75;

export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #running = new Set<Promise<void>>();

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
  }

  /** Tasks currently bound to an engine request. */
  get running(): number {
    return this.#running.size;
  }

  /** Wait until every running engine request has ended. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Dispatch queued tasks while a Ready replica has a free slot. */
  pump(pool: PoolRuntime): void {
    for (;;) {
      const next = pool.queue.peekNext();
      if (!next) return;
      const task = this.#o.taskOf(next.id);
      if (!task || task.terminal) {
        pool.queue.remove(next.id);
        continue;
      }
      if (task.deadlineAtMs <= this.#o.clock.now()) {
        // Starting now cannot meet the deadline: end it instead of burning a slot (SPEC §2.5).
        pool.queue.remove(next.id);
        this.#o.onQueueChange(pool);
        this.#o.lifecycle.finish(task, pool, replicaExhausted(pool, task));
        continue;
      }
      const affinity =
        task.spec.kvHint === 'cold' ? undefined : this.#o.sessions.get(task.spec.sessionId)?.lastReplicaId;
      const replicaId = chooseReplica(pool.loads(), { affinity, overloadRatio: OVERLOAD_RATIO });
      const replica = replicaId === undefined ? undefined : pool.replica(replicaId);
      if (!replica) return;
      pool.queue.takeNext();
      this.#o.onQueueChange(pool);
      this.#bind(pool, task, replica, affinity);
    }
  }

  /** Abort a running task's engine request, remembering why. */
  abort(task: TaskRecord, cause: AbortCause): void {
    task.abortCause ??= cause;
    task.abort.abort(new Error(cause));
  }

  #bind(pool: PoolRuntime, task: TaskRecord, replica: ReplicaView, affinity: string | undefined): void {
    const now = this.#o.clock.now();
    task.replicaId = replica.id;
    task.dispatchedAtMs = now;
    task.kvWarm = affinity === replica.id;
    task.state = { kind: 'dispatched', replicaId: replica.id };
    pool.inFlight.set(replica.id, (pool.inFlight.get(replica.id) ?? 0) + 1);
    this.#o.metrics.inc('tasks_started_total', {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      replica_id: replica.id,
      priority: task.spec.priority,
    });
    this.#o.logger.info(
      {
        ...this.#o.lifecycle.fields(task, pool),
        event: 'task.dispatched',
        queue_time_ms: now - task.spec.acceptedAtMs,
      },
      'task dispatched',
    );
    const run = this.#run(pool, task, replica).finally(() => {
      this.#running.delete(run);
      pool.inFlight.set(replica.id, Math.max(0, (pool.inFlight.get(replica.id) ?? 1) - 1));
      this.pump(pool);
    });
    this.#running.add(run);
  }

  async #run(pool: PoolRuntime, task: TaskRecord, replica: ReplicaView): Promise<void> {
    const { clock, metrics, lifecycle } = this.#o;
    const { wallMs, idleMs } = pool.config.timeouts;
    const wall = setTimeout(() => this.abort(task, 'wall-timeout'), wallMs);
    const idle = setTimeout(() => this.abort(task, 'idle-timeout'), idleMs);
    const labels = {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      replica_id: replica.id,
    };
    const startedAt = clock.now();
    try {
      if (task.spec.workload === 'embedding') {
        await this.#embed(pool, task, replica, labels);
        return;
      }
      const stream = replica.adapter.generate(
        {
          prompt: task.spec.prompt ?? '',
          maxTokens: task.spec.maxTokens,
          seed: task.spec.seed,
          determinism: task.spec.determinism,
          samplerProfileVersion: task.spec.samplerProfileVersion,
          cachePrompt: task.spec.kvHint !== 'cold',
        },
        task.abort.signal,
      );
      for await (const ev of stream) {
        if (task.terminal) break;
        if (ev.kind === 'tokens') {
          idle.refresh();
          if (task.firstTokenAtMs === undefined) {
            task.firstTokenAtMs = clock.now();
            task.state = { kind: 'streaming', replicaId: replica.id };
            metrics.observe(
              'latency_first_token_ms',
              {
                engine: labels.engine,
                engine_version: labels.engine_version,
                pool_id: labels.pool_id,
                priority: task.spec.priority,
              },
              task.firstTokenAtMs - task.spec.acceptedAtMs,
            );
          }
          // One event per generated token; text released for several tokens rides on the last one.
          const firstWithId = ev.count - ev.ids.length;
          for (let k = 0; k < ev.count; k++) {
            const t = k === ev.count - 1 ? ev.text : '';
            const id = k >= firstWithId ? ev.ids[k - firstWithId] : undefined;
            task.log.append({
              type: 'token',
              data: id === undefined ? { t, i: task.tokensOut++ } : { t, i: task.tokensOut++, id },
            });
          }
          metrics.inc('tokens_out_total', labels, ev.count);
          continue;
        }
        task.tokensIn = ev.tokensIn;
        metrics.inc('tokens_in_total', labels, ev.tokensIn);
        const decodeMs = clock.now() - (task.firstTokenAtMs ?? clock.now());
        pool.estimator.observe(clock.now() - startedAt, task.tokensOut, decodeMs);
        this.#rememberSession(task, replica.id);
        lifecycle.finish(task, pool, {
          kind: 'completed',
          end: {
            tokens_out: task.tokensOut,
            decode_ms: decodeMs,
            tokens_in: ev.tokensIn,
            stop_reason: ev.stopReason,
          },
        });
      }
      if (!task.terminal) {
        lifecycle.finish(task, pool, {
          kind: 'failed',
          error: {
            code: 'WORKER_RESET',
            message: `engine stream of replica ${replica.id} ended without a final frame`,
            engine: pool.config.engine,
            retriable: true,
          },
        });
      }
    } catch (err) {
      if (!task.terminal) lifecycle.finish(task, pool, this.#failure(pool, task, err));
    } finally {
      clearTimeout(wall);
      clearTimeout(idle);
    }
  }

  /** Embedding workloads: one engine call, the vectors ride on the `end` event. */
  async #embed(
    pool: PoolRuntime,
    task: TaskRecord,
    replica: ReplicaView,
    labels: { engine: string; engine_version: string; pool_id: string; replica_id: string },
  ): Promise<void> {
    const embed = replica.adapter.embed?.bind(replica.adapter);
    if (!embed) throw new OrchError('INVALID_PARAMS', `replica ${replica.id} does not serve embeddings`);
    const started = this.#o.clock.now();
    const r = await embed(task.spec.inputs ?? [], task.abort.signal);
    if (task.terminal) return;
    task.tokensIn = r.tokensIn;
    this.#o.metrics.inc('tokens_in_total', labels, r.tokensIn);
    pool.estimator.observe(this.#o.clock.now() - started, 0, 0);
    this.#o.lifecycle.finish(task, pool, {
      kind: 'completed',
      end: {
        tokens_out: 0,
        decode_ms: this.#o.clock.now() - started,
        tokens_in: r.tokensIn,
        stop_reason: 'eos',
        embeddings: r.vectors.map((v) => [...v]),
      },
    });
  }

  #failure(pool: PoolRuntime, task: TaskRecord, err: unknown): { kind: 'failed'; error: ErrorData } {
    const engine = pool.config.engine;
    if (task.abortCause === 'wall-timeout' || task.abortCause === 'idle-timeout') {
      const limit =
        task.abortCause === 'wall-timeout' ? pool.config.timeouts.wallMs : pool.config.timeouts.idleMs;
      return {
        kind: 'failed',
        error: {
          code: 'DECODE_TIMEOUT',
          message: `${task.abortCause === 'wall-timeout' ? 'wall' : 'idle'} timeout of ${limit} ms exceeded`,
          engine,
          retriable: true,
        },
      };
    }
    if (task.abortCause === 'shutdown') {
      return {
        kind: 'failed',
        error: {
          code: 'POOL_UNAVAILABLE',
          message: 'the orchestrator is shutting down',
          engine,
          retriable: true,
        },
      };
    }
    if (err instanceof OrchError) {
      return {
        kind: 'failed',
        error: { code: err.code, message: err.message, engine, retriable: err.retriable },
      };
    }
    this.#o.logger.error({ err, job_id: task.spec.taskId }, 'unexpected dispatch failure');
    return {
      kind: 'failed',
      error: { code: 'INTERNAL', message: 'internal error', engine, retriable: false },
    };
  }

  #rememberSession(task: TaskRecord, replicaId: string): void {
    const session = this.#o.sessions.get(task.spec.sessionId);
    if (!session || session.tenant !== task.spec.tenant) return;
    session.lastReplicaId = replicaId;
    session.kvTokens = task.tokensIn + task.tokensOut;
  }
}

/** The terminal error of a queued task whose deadline passed before any replica could start it. */
export function replicaExhausted(pool: PoolRuntime, task: TaskRecord): { kind: 'failed'; error: ErrorData } {
  return {
    kind: 'failed',
    error: {
      code: 'REPLICA_EXHAUSTED',
      message: `no replica of pool '${pool.id}' could start the task before its deadline (${task.spec.deadlineMs} ms)`,
      engine: pool.config.engine,
      retriable: true,
    },
  };
}
