/**
 * The orchestrator core: admission (SPEC §2.1), queues and dispatch, cancellation, sessions, and
 * the periodic work (SSE `metrics` frames, queued-deadline expiry, session sweep). The HTTP layer
 * is a thin shell over this class.
 */
import { createHash } from 'node:crypto';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { Accepted, Principal, SubmitInput } from '../domain/submit.js';
import type { TaskSpec } from '../domain/task.js';
import { PRIORITIES, type Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { PoolSupervisor } from '../pool/replica.js';
import { SessionStore, type Session } from '../sessions/session-store.js';
import type { Logger } from '../util/logger.js';
import { backpressureError, checkCtx, checkDeadline, countPromptTokens, resolvePool } from './admission.js';
import { Dispatcher, replicaExhausted } from './dispatcher.js';
import { PoolRuntime } from './pool-runtime.js';
import { TaskLifecycle } from './task-lifecycle.js';
import { TaskRecord } from './task-record.js';
import { onTimeProbability } from './on-time.js';

export interface OrchestratorOptions {
  readonly config: ResolvedConfig;
  readonly supervisors: ReadonlyMap<string, PoolSupervisor>;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** `GET /v1/sessions/{id}` in domain terms. */
export interface SessionView {
  readonly sessionId: string;
  readonly ttlMsRemaining: number;
  readonly turns: number;
  readonly kvBytes: number;
  readonly kvWarmth: boolean;
  readonly replicaId: string | undefined;
}

/** Default seed: a stable hash of the task id (SPEC §2.1), within llama.cpp's 32-bit seed range. */
export function defaultSeed(taskId: string): number {
  return createHash('sha256').update(taskId).digest().readUInt32BE(0) % 0xffff_fffe;
}

const SWEEP_INTERVAL_MS = 200;
/** How many finished task ids are remembered to refuse duplicates after their events expired. */
const SEEN_IDS = 1_000_000;

export class Orchestrator {
  readonly #o: OrchestratorOptions;
  readonly #pools: PoolRuntime[];
  readonly #tasks = new Map<string, TaskRecord>();
  readonly #seenIds = new Set<string>();
  readonly #sessions: SessionStore;
  readonly #lifecycle: TaskLifecycle;
  readonly #dispatcher: Dispatcher;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribe: (() => void)[] = [];
  #closing = false;

  constructor(opts: OrchestratorOptions) {
    this.#o = opts;
    const { config } = opts;
    this.#pools = config.pools.map((p) => {
      const sup = opts.supervisors.get(p.id);
      if (!sup) throw new Error(`no supervisor for pool ${p.id}`);
      return new PoolRuntime(p, sup, config.fairness.weights);
    });
    const poolCfg = (id: string) => config.pools.find((p) => p.id === id);
    this.#sessions = new SessionStore({
      clock: opts.clock,
      ttlMs: (id) => poolCfg(id)?.session.ttlMs ?? 600_000,
      maxTurns: (id) => poolCfg(id)?.session.maxTurns ?? 8,
    });
    this.#lifecycle = new TaskLifecycle({
      metrics: opts.metrics,
      logger: opts.logger,
      clock: opts.clock,
      retentionMs: config.sse.retentionMs,
      forget: (t) => {
        if (this.#tasks.get(t.spec.taskId) === t) this.#tasks.delete(t.spec.taskId);
      },
    });
    this.#dispatcher = new Dispatcher({
      lifecycle: this.#lifecycle,
      metrics: opts.metrics,
      logger: opts.logger,
      clock: opts.clock,
      sessions: this.#sessions,
      taskOf: (id) => this.#tasks.get(id),
      onQueueChange: (p) => this.#updateQueueGauges(p),
    });
    for (const pool of this.#pools) {
      this.#unsubscribe.push(pool.supervisor.onChange(() => this.#onReplicaChange(pool)));
      this.#onReplicaChange(pool);
    }
    this.#timers.push(setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref());
    this.#timers.push(setInterval(() => this.#metricsFrames(), config.sse.metricsIntervalMs).unref());
  }

  get pools(): readonly PoolRuntime[] {
    return this.#pools;
  }

  /** Admission (SPEC §2.1 steps 2–7; auth and schema ran in the HTTP layer) and enqueue. */
  async submit(principal: Principal, input: SubmitInput, correlationId: string): Promise<Accepted> {
    if (this.#closing) throw new OrchError('POOL_UNAVAILABLE', 'the orchestrator is shutting down');
    const pool = resolvePool(this.#pools, input);
    try {
      if (this.#tasks.has(input.taskId) || this.#seenIds.has(input.taskId)) {
        throw new OrchError('INVALID_PARAMS', `task_id: '${input.taskId}' was already used (ORCH-3024)`);
      }
      checkCtx(pool, input);
      const promptTokens = await countPromptTokens(pool, input, AbortSignal.timeout(10_000));
      // The id may have been taken while the tokenizer ran.
      if (this.#tasks.has(input.taskId) || this.#seenIds.has(input.taskId)) {
        throw new OrchError('INVALID_PARAMS', `task_id: '${input.taskId}' was already used (ORCH-3024)`);
      }
      const { predictedStartMs } = checkDeadline(pool, input);
      return this.#enqueue(pool, principal, input, correlationId, promptTokens, predictedStartMs);
    } catch (err) {
      if (err instanceof OrchError) {
        this.#lifecycle.countRejected(pool, err.code);
        this.#o.logger.info(
          {
            event: 'admission.rejected',
            job_id: input.taskId,
            session_id: input.sessionId,
            tenant_id: principal.tenant,
            correlation_id: correlationId,
            engine: pool.config.engine,
            pool_id: pool.id,
            priority: input.priority,
            code: err.code,
          },
          err.message,
        );
      }
      throw err;
    }
  }

  #enqueue(
    pool: PoolRuntime,
    principal: Principal,
    input: SubmitInput,
    correlationId: string,
    promptTokens: number,
    predictedStartMs: number,
  ): Accepted {
    const now = this.#o.clock.now();
    const spec: TaskSpec = {
      ...input,
      tenant: principal.tenant,
      seed: input.seed ?? defaultSeed(input.taskId),
      promptTokens,
      correlationId,
      acceptedAtMs: now,
    };
    const offer = pool.queue.offer({
      id: spec.taskId,
      priority: spec.priority,
      cost: promptTokens + (spec.expectedTokens ?? spec.maxTokens),
    });
    const policy = pool.config.queue.fullPolicy;
    if (offer.kind === 'refused') {
      this.#o.metrics.inc('admission_backpressure_events_total', { engine: pool.config.engine, policy });
      throw backpressureError(pool, offer, spec.priority);
    }
    const task = new TaskRecord(spec, pool.id, this.#o.config.sse.maxEventsPerTask);
    this.#tasks.set(spec.taskId, task);
    this.#remember(spec.taskId);
    const session = this.#sessions.beginTurn(spec.sessionId, spec.tenant, pool.id);
    task.kvWarm = session.lastReplicaId !== undefined && spec.kvHint !== 'cold';
    task.log.append({
      type: 'started',
      data: { queue_position: offer.position, predicted_start_ms: predictedStartMs },
    });
    this.#o.metrics.inc('tasks_enqueued_total', {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      replica_id: '',
      priority: spec.priority,
    });
    this.#o.logger.info(
      { ...this.#lifecycle.fields(task, pool), event: 'admission.accepted', queue_position: offer.position },
      'task accepted',
    );
    for (const victim of offer.evicted) {
      this.#o.metrics.inc('admission_backpressure_events_total', { engine: pool.config.engine, policy });
      const evicted = this.#tasks.get(victim.id);
      if (!evicted) continue;
      this.#lifecycle.finish(evicted, pool, {
        kind: 'evicted',
        error: {
          code: 'QUEUE_FULL_DROP_LRU',
          message: `evicted from the full queue of pool '${pool.id}' (policy ${policy}) to admit newer work`,
          engine: pool.config.engine,
          retriable: true,
          ...(policy === 'shed-low-priority' ? { preempted: true } : {}),
        },
      });
    }
    this.#updateQueueGauges(pool);
    const accepted: Accepted = {
      taskId: spec.taskId,
      queuePosition: offer.position,
      predictedStartMs: Math.ceil(predictedStartMs),
      backoffMs: pool.queue.size > pool.freeSlots() ? pool.backoffMs() : 0,
    };
    this.#dispatcher.pump(pool);
    return accepted;
  }

  /** A task the principal may see; 404 for unknown ids and for other tenants' tasks (SPEC §11). */
  task(principal: Principal, id: string): TaskRecord {
    const task = this.#tasks.get(id);
    if (!task || task.spec.tenant !== principal.tenant) {
      throw new OrchError('NOT_FOUND', `task '${id}' not found`);
    }
    return task;
  }

  /** Cancel (SPEC §2.3): synchronous terminal event first, then the engine request is aborted. */
  cancel(principal: Principal, id: string): void {
    const task = this.task(principal, id);
    this.#cancelTask(task, 'client');
  }

  #cancelTask(task: TaskRecord, reason: 'client' | 'session-deleted'): void {
    if (task.terminal) return;
    const pool = this.#poolOf(task);
    const queued = task.state.kind === 'queued';
    if (queued) pool.queue.remove(task.spec.taskId);
    const now = this.#o.clock.now();
    this.#lifecycle.finish(task, pool, {
      kind: 'canceled',
      reason,
      end: {
        tokens_out: task.tokensOut,
        decode_ms: task.firstTokenAtMs === undefined ? 0 : now - task.firstTokenAtMs,
        canceled: true,
      },
    });
    if (queued) this.#updateQueueGauges(pool);
    else this.#dispatcher.abort(task, 'client-cancel');
  }

  session(principal: Principal, id: string): SessionView {
    const s = this.#ownSession(principal, id);
    return {
      sessionId: s.id,
      ttlMsRemaining: this.#sessions.ttlRemainingMs(s),
      turns: s.turns,
      kvBytes: this.#kvBytes(s),
      kvWarmth:
        s.lastReplicaId !== undefined &&
        this.#poolById(s.poolId)?.replica(s.lastReplicaId)?.state.kind === 'ready',
      replicaId: s.lastReplicaId,
    };
  }

  /** Deletes the session; its KV is released when its slot is next reused (cache_prompt off). */
  deleteSession(principal: Principal, id: string): void {
    this.#ownSession(principal, id);
    this.#sessions.delete(id);
  }

  #ownSession(principal: Principal, id: string): Session {
    const s = this.#sessions.get(id);
    if (!s || s.tenant !== principal.tenant) throw new OrchError('NOT_FOUND', `session '${id}' not found`);
    return s;
  }

  /** KV bytes held for the session: tokens resident × per-token KV size of the model (estimate). */
  #kvBytes(s: Session): number {
    return s.lastReplicaId === undefined ? 0 : s.kvTokens * 2 * 4 * 64 * 2;
  }

  /** Stop admitting, end queued tasks, let running ones finish within `drainMs`, then abort them. */
  async close(drainMs = 5_000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const t of this.#timers) clearInterval(t);
    for (const u of this.#unsubscribe) u();
    for (const task of this.#tasks.values()) {
      if (task.state.kind !== 'queued') continue;
      const pool = this.#poolOf(task);
      pool.queue.remove(task.spec.taskId);
      this.#lifecycle.finish(task, pool, {
        kind: 'failed',
        error: { code: 'POOL_UNAVAILABLE', message: 'the orchestrator is shutting down', retriable: true },
      });
    }
    const drained = this.#dispatcher.idle();
    const timeout = new Promise<void>((r) => setTimeout(r, drainMs).unref());
    await Promise.race([drained, timeout]);
    for (const task of this.#tasks.values()) if (!task.terminal) this.#dispatcher.abort(task, 'shutdown');
    await this.#dispatcher.idle();
  }

  #remember(id: string): void {
    this.#seenIds.add(id);
    if (this.#seenIds.size > SEEN_IDS) {
      const oldest = this.#seenIds.values().next();
      if (!oldest.done) this.#seenIds.delete(oldest.value);
    }
  }

  #poolOf(task: TaskRecord): PoolRuntime {
    const pool = this.#poolById(task.poolId);
    if (!pool) throw new Error(`unknown pool ${task.poolId}`);
    return pool;
  }

  #poolById(id: string): PoolRuntime | undefined {
    return this.#pools.find((p) => p.id === id);
  }

  #onReplicaChange(pool: PoolRuntime): void {
    this.#o.metrics.set(
      'pool_ready',
      { engine: pool.config.engine, pool_id: pool.id },
      pool.readyReplicas().length,
    );
    this.#dispatcher.pump(pool);
  }

  #updateQueueGauges(pool: PoolRuntime): void {
    for (const priority of PRIORITIES) {
      this.#o.metrics.set(
        'queue_depth',
        { engine: pool.config.engine, engine_version: pool.engineVersion(), pool_id: pool.id, priority },
        pool.queue.sizeOf(priority),
      );
    }
  }

  /** Queued tasks that can no longer meet their deadline end with REPLICA_EXHAUSTED (SPEC §2.5). */
  #sweep(): void {
    const now = this.#o.clock.now();
    this.#sessions.sweep();
    for (const pool of this.#pools) {
      let changed = false;
      for (const entry of [...pool.queue.entries()]) {
        const task = this.#tasks.get(entry.id);
        if (!task || task.deadlineAtMs > now) continue;
        pool.queue.remove(entry.id);
        changed = true;
        this.#lifecycle.finish(task, pool, replicaExhausted(pool, task));
      }
      if (changed) this.#updateQueueGauges(pool);
    }
  }

  /** Periodic, additive-only SSE `metrics` frames for every live task (ORCH-3100). */
  #metricsFrames(): void {
    const now = this.#o.clock.now();
    for (const task of this.#tasks.values()) {
      if (task.terminal) continue;
      const pool = this.#poolOf(task);
      const queued = task.state.kind === 'queued';
      const ahead = queued ? (pool.queue.positionOf(task.spec.taskId) ?? 0) : 0;
      const remainingTokens = Math.max(0, task.spec.maxTokens - task.tokensOut);
      const predictedFinishMs =
        (queued ? pool.predictStartMs(ahead) : 0) + (pool.estimator.predictDecodeMs(remainingTokens) ?? 0);
      task.log.append({
        type: 'metrics',
        data: {
          queue_depth: pool.queue.size,
          queue_position: ahead,
          on_time_probability: onTimeProbability(predictedFinishMs, task.deadlineAtMs - now),
          kv_warmth: task.kvWarm,
          tokens_out: task.tokensOut,
          ...(task.replicaId === undefined ? {} : { replica_id: task.replicaId }),
        },
      });
    }
  }
}
