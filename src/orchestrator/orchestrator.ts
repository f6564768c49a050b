/**
 * The orchestrator core: admission (SPEC §2.1), queues and dispatch, cancellation, sessions, and
 * the periodic work (SSE `metrics` frames, queued-deadline expiry, session sweep). The HTTP layer
 * is a thin shell over this class.
 */
import { createHash } from 'node:crypto';
import type { ResolvedConfig, ResolvedPool, ResolvedTenant } from '../config/resolved-config.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { Accepted, Principal, SubmitInput } from '../domain/submit.js';
import type { TaskSpec } from '../domain/task.js';
import { PRIORITIES, type Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { PoolSupervisor } from '../pool/replica.js';
import { SessionStore, type Session } from '../sessions/session-store.js';
import type { Logger } from '../util/logger.js';
import {
  costOf,
  emptyUsage,
  remaining,
  type BudgetRemaining,
  type SessionUsage,
  hasSessionBudget,
} from '../sessions/budget.js';

const NO_BUDGETS = { sessionTokens: undefined, sessionWallMs: undefined, sessionCost: undefined };
import { ShareTracker } from '../scheduler/share-tracker.js';
import { TenantQuotas } from '../scheduler/tenant-quotas.js';
import {
  backpressureError,
  checkBudget,
  checkCtx,
  checkDeadline,
  aheadOf,
  countPromptTokens,
  predictFor,
  quotaError,
  resolvePool,
} from './admission.js';
import { Dispatcher, replicaExhausted } from './dispatcher.js';
import { PoolControl } from './pool-control.js';
import { PoolRuntime } from './pool-runtime.js';
import { TaskLifecycle } from './task-lifecycle.js';
import { TaskRecord } from './task-record.js';
import { onTimeProbability } from './on-time.js';
import { FleetGauges } from './fleet-gauges.js';
import { tracedTask } from './traced-task.js';
import type { TaskTracer } from '../tracing/task-tracer.js';

export interface OrchestratorOptions {
  readonly config: ResolvedConfig;
  readonly supervisors: ReadonlyMap<string, PoolSupervisor>;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Builds a supervisor for a pool configuration (reloads); without it, reload answers 501. */
  readonly createSupervisor?: (pool: ResolvedPool) => Promise<PoolSupervisor>;
  /** Reloads a remote pool on its hosts (pool-managerd commands); the cause on failure. */
  readonly remoteReload?: (pool: PoolRuntime, modelPath: string) => Promise<string | undefined>;
  /** Stops a remote pool's engines on its hosts (after a drain). */
  readonly remoteStop?: (pool: PoolRuntime) => Promise<string | undefined>;
  /** Canary routing of new sessions: the model id a request for `modelRef` goes to. */
  readonly route?: (modelRef: string, sessionId: string) => string;
  /** The durable session budgets ledger (usage of finished turns). */
  readonly ledger?: {
    add(tenant: string, sessionId: string, usage: SessionUsage, atMs: number): Promise<void>;
    get(tenant: string, sessionId: string): Promise<SessionUsage | undefined>;
  };
  /** Catalog lifecycle state of a model id (Deprecated blocks new sessions). */
  readonly modelState?: (modelId: string) => string | undefined;
  /** The host's GPUs (telemetry in pool health). */
  readonly gpus?: () => readonly GpuInfo[] | undefined;
  /** Task spans (OpenTelemetry); absent: no tracing. */
  readonly tracer?: TaskTracer;
}

/** `GET /v1/sessions/{id}` in domain terms. */
export interface SessionView {
  readonly sessionId: string;
  readonly ttlMsRemaining: number;
  readonly turns: number;
  readonly kvBytes: number;
  readonly kvWarmth: boolean;
  readonly replicaId: string | undefined;
  readonly usage: SessionUsage;
  readonly budget: BudgetRemaining;
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
  /** Per pool: unsubscribes from its current supervisor (which a reload replaces). */
  readonly #poolListeners = new Map<string, () => void>();
  readonly #control: PoolControl;
  readonly #quotas: TenantQuotas;
  readonly #shares: ShareTracker;
  /** Finished tasks per priority that met / missed their deadline. */
  readonly #gauges: FleetGauges;
  #sweeps = 0;
  #closing = false;

  constructor(opts: OrchestratorOptions) {
    this.#o = opts;
    this.#gauges = new FleetGauges(opts.metrics);
    const { config } = opts;
    this.#pools = config.pools.map((p) => {
      const sup = opts.supervisors.get(p.id);
      if (!sup) throw new Error(`no supervisor for pool ${p.id}`);
      return new PoolRuntime(p, sup, {
        weights: config.fairness.weights,
        tenantWeight: (t) => config.fairness.tenants.get(t)?.weight ?? 1,
        mode: config.scheduling.mode,
        deadlineSlackTokens: config.scheduling.deadlineSlackTokens,
        clock: opts.clock,
      });
    });
    this.#quotas = new TenantQuotas(config.fairness.tenants);
    this.#shares = new ShareTracker(config.fairness.shareWindowTokens);
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
      onFinish: (t, pool) => this.#onFinish(t, pool),
      weights: config.fairness.weights,
    });
    this.#dispatcher = new Dispatcher({
      lifecycle: this.#lifecycle,
      metrics: opts.metrics,
      logger: opts.logger,
      clock: opts.clock,
      sessions: this.#sessions,
      taskOf: (id) => this.#tasks.get(id),
      onQueueChange: (p) => this.#updateQueueGauges(p),
      onDispatch: (task) => this.#onDispatch(task),
      preemption: config.scheduling.preemption,
    });
    const create = opts.createSupervisor;
    this.#control = new PoolControl({
      logger: opts.logger,
      createSupervisor: (p) =>
        create
          ? create(p)
          : Promise.reject(new OrchError('NOT_IMPLEMENTED', 'this orchestrator cannot build engines')),
      tasksOf: (pool) => [...this.#tasks.values()].filter((t) => t.poolId === pool.id && !t.terminal),
      endQueued: (pool, task, error) => {
        pool.queue.remove(task.spec.taskId);
        this.#lifecycle.finish(task, pool, { kind: 'failed', error });
        this.#updateQueueGauges(pool);
      },
      abortRunning: (task) => this.#dispatcher.abort(task, 'drain'),
      swapSupervisor: (pool, sup) => {
        this.#poolListeners.get(pool.id)?.();
        pool.supervisor = sup;
        this.#poolListeners.set(
          pool.id,
          sup.onChange(() => this.#onReplicaChange(pool)),
        );
        this.#onReplicaChange(pool);
      },
      pump: (pool) => this.#dispatcher.pump(pool),
      ...(opts.remoteReload ? { remoteReload: opts.remoteReload } : {}),
      ...(opts.remoteStop ? { remoteStop: opts.remoteStop } : {}),
    });
    for (const pool of this.#pools) {
      this.#poolListeners.set(
        pool.id,
        pool.supervisor.onChange(() => this.#onReplicaChange(pool)),
      );
      this.#onReplicaChange(pool);
    }
    this.#timers.push(setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref());
    this.#timers.push(setInterval(() => this.#metricsFrames(), config.sse.metricsIntervalMs).unref());
  }

  /** Tenants with configured weights and quotas (capabilities' rate limits). */
  tenants(): ReadonlyMap<string, ResolvedTenant> {
    return this.#o.config.fairness.tenants;
  }

  /** Latest GPU telemetry of this host, when nvidia-smi is usable. */
  gpus(): readonly GpuInfo[] | undefined {
    return this.#o.gpus?.();
  }

  get pools(): readonly PoolRuntime[] {
    return this.#pools;
  }

  /** Admission (SPEC §2.1 steps 2–7; auth and schema ran in the HTTP layer) and enqueue. */
  async submit(principal: Principal, input: SubmitInput, correlationId: string): Promise<Accepted> {
    if (this.#closing) throw new OrchError('POOL_UNAVAILABLE', 'the orchestrator is shutting down');
    let pool: PoolRuntime;
    try {
      pool = resolvePool(this.#pools, this.#routed(principal, input));
    } catch (err) {
      if (err instanceof OrchError) this.#logRejected(principal, input, correlationId, err, undefined);
      throw err;
    }
    let rateCharged = false;
    try {
      if (this.#tasks.has(input.taskId) || this.#seenIds.has(input.taskId)) {
        throw new OrchError('INVALID_PARAMS', `task_id: '${input.taskId}' was already used (ORCH-3024)`);
      }
      const refusal = this.#quotas.check(principal.tenant, this.#o.clock.now());
      if (refusal) {
        this.#o.metrics.inc('admission_backpressure_events_total', {
          engine: pool.config.engine,
          policy: 'reject',
        });
        throw quotaError(pool, principal.tenant, refusal);
      }
      rateCharged = true;
      checkCtx(pool, input);
      const promptTokens = await countPromptTokens(pool, input, AbortSignal.timeout(10_000));
      // The id may have been taken while the tokenizer ran.
      if (this.#tasks.has(input.taskId) || this.#seenIds.has(input.taskId)) {
        throw new OrchError('INVALID_PARAMS', `task_id: '${input.taskId}' was already used (ORCH-3024)`);
      }
      const session = this.#sessions.get(input.sessionId);
      // A Deprecated model keeps its sessions but takes no new ones (ORCH-3070).
      const state = this.#o.modelState?.(pool.config.model.id);
      if (state === 'Retired')
        throw new OrchError('POOL_UNAVAILABLE', `model '${pool.config.model.id}' is retired`, {
          engine: pool.config.engine,
          poolId: pool.id,
        });
      const mayOverride =
        input.override === true && this.#o.config.catalog.overrideTenants.includes(principal.tenant);
      if (state === 'Deprecated' && session?.tenant !== principal.tenant && !mayOverride)
        throw new OrchError(
          'MODEL_DEPRECATED',
          `model '${pool.config.model.id}' is deprecated: it takes no new sessions`,
          {
            engine: pool.config.engine,
            poolId: pool.id,
          },
        );
      const own = session?.tenant === principal.tenant && session.poolId === pool.id ? session : undefined;
      // After a restart the session is gone from memory, but its budget ledger is durable.
      const hasBudget = hasSessionBudget(pool.config.budgets);
      const ledgerUsage =
        own === undefined && hasBudget
          ? await this.#o.ledger?.get(principal.tenant, input.sessionId)
          : undefined;
      checkBudget(
        pool,
        own?.usage ?? ledgerUsage ?? emptyUsage(),
        promptTokens,
        input.workload === 'completion' ? input.maxTokens : 0,
      );
      // Charged in tokens the engine must really process: a warm session's prefix is cached.
      const cached =
        own?.lastReplicaId !== undefined && input.kvHint !== 'cold'
          ? Math.min(own.kvTokens, promptTokens)
          : 0;
      const uncached = promptTokens - cached;
      const cost =
        uncached + (input.workload === 'completion' ? (input.expectedTokens ?? input.maxTokens) : 0);
      const { predictedStartMs, victims } = this.#deadlineOrPreempt(pool, input, cost, uncached);
      return this.#enqueue(pool, principal, input, correlationId, {
        promptTokens,
        cost,
        predictedStartMs,
        victims,
        ledgerUsage,
      });
    } catch (err) {
      if (rateCharged) this.#quotas.refund(principal.tenant);
      if (err instanceof OrchError) {
        this.#lifecycle.countRejected(pool, err.code);
        this.#logRejected(principal, input, correlationId, err, pool);
      }
      throw err;
    }
  }

  /**
   * Canary routing (ORCH-3072): a session that exists stays with the model it started on; a new
   * one asking for a model with a canary may be sent to the canary's pools.
   */
  #routed(principal: Principal, input: SubmitInput): SubmitInput {
    const route = this.#o.route;
    if (!route) return input;
    const session = this.#sessions.get(input.sessionId);
    if (session?.tenant === principal.tenant) {
      const model = this.#poolById(session.poolId)?.config.model.id;
      return model === undefined || model === input.modelRef ? input : { ...input, modelRef: model };
    }
    const target = route(input.modelRef, input.sessionId);
    return target === input.modelRef ? input : { ...input, modelRef: target };
  }

  /**
   * Step 6 with soft preemption (SPEC §3.5): when the deadline is infeasible only because of
   * queued lower-priority work that fairness would interleave first, evict that work (newest
   * first) instead of refusing — never running tasks.
   */
  #deadlineOrPreempt(
    pool: PoolRuntime,
    input: SubmitInput,
    cost: number,
    uncached: number,
  ): { predictedStartMs: number; victims: TaskRecord[] } {
    try {
      return { ...checkDeadline(pool, input, cost, uncached), victims: [] };
    } catch (err) {
      if (!(err instanceof OrchError) || err.code !== 'DEADLINE_UNMET') throw err;
      if (this.#o.config.scheduling.preemption === 'off') throw err;
      if (predictFor(pool, input, cost, uncached, false).finishMs > input.deadlineMs) throw err;
      // Evict exactly the lower-priority entries fairness would serve before the urgent task.
      const count = aheadOf(pool, input.priority) - aheadOf(pool, input.priority, false);
      const victims: TaskRecord[] = [];
      for (const entry of pool.queue.lowerPriorityOldestFirst(input.priority, count)) {
        const task = this.#tasks.get(entry.id);
        pool.queue.remove(entry.id);
        if (task) victims.push(task);
      }
      return { predictedStartMs: predictFor(pool, input, cost, uncached, false).startMs, victims };
    }
  }

  #enqueue(
    pool: PoolRuntime,
    principal: Principal,
    input: SubmitInput,
    correlationId: string,
    a: {
      promptTokens: number;
      cost: number;
      predictedStartMs: number;
      victims: readonly TaskRecord[];
      ledgerUsage?: SessionUsage | undefined;
    },
  ): Accepted {
    const { promptTokens, predictedStartMs } = a;
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
      tenant: spec.tenant,
      cost: a.cost,
      deadlineAtMs: now + spec.deadlineMs,
    });
    const policy = pool.config.queue.fullPolicy;
    if (offer.kind === 'refused') {
      this.#o.metrics.inc('admission_backpressure_events_total', { engine: pool.config.engine, policy });
      throw backpressureError(pool, offer, spec.priority);
    }
    const task = new TaskRecord(spec, pool.id, this.#o.config.sse.maxEventsPerTask);
    task.cost = a.cost;
    this.#quotas.acquire(spec.tenant);
    this.#tasks.set(spec.taskId, task);
    this.#remember(spec.taskId);
    const session = this.#sessions.beginTurn(spec.sessionId, spec.tenant, pool.id);
    if (session.turns === 1 && a.ledgerUsage) Object.assign(session.usage, a.ledgerUsage);
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
      {
        ...this.#lifecycle.fields(task, pool),
        event: 'admission.accepted',
        queue_position: offer.position,
        predicted_start_ms: predictedStartMs,
        on_time_probability: onTimeProbability(
          predictedStartMs +
            (pool.predictServiceMs(promptTokens, spec.expectedTokens ?? spec.maxTokens) ?? 0),
          spec.deadlineMs,
        ),
      },
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
    for (const victim of a.victims) {
      this.#o.metrics.inc('preemptions_total', { mode: 'soft', engine: pool.config.engine });
      this.#lifecycle.finish(victim, pool, {
        kind: 'evicted',
        error: {
          code: 'QUEUE_FULL_DROP_LRU',
          message: `preempted while queued (soft preemption) to admit ${spec.priority} task ${spec.taskId} within its deadline`,
          engine: pool.config.engine,
          retriable: true,
          preempted: true,
        },
      });
    }
    this.#updateQueueGauges(pool);
    const accepted: Accepted = {
      taskId: spec.taskId,
      queuePosition: offer.position,
      predictedStartMs: Number.isFinite(predictedStartMs) ? Math.ceil(predictedStartMs) : 0,
      backoffMs: pool.queue.size > pool.freeSlots() ? pool.backoffMs() : 0,
      budget: remaining(session.usage, pool.config.budgets),
    };
    this.#dispatcher.pump(pool);
    return accepted;
  }

  /** `POST /v1/pools/{id}/drain`. */
  drain(poolId: string, deadlineMs: number): PoolRuntime {
    const pool = this.#poolOrThrow(poolId);
    this.#control.drain(pool, deadlineMs);
    return pool;
  }

  /** Stops a drained pool's engines once its in-flight work is over (a Retired model unloads). */
  async unloadWhenDrained(poolId: string): Promise<void> {
    const pool = this.#poolOrThrow(poolId);
    while (pool.running.size > 0 || pool.lifecycle?.state === 'in_progress')
      await new Promise((r) => setTimeout(r, 20));
    await pool.supervisor.stop();
    this.#o.logger.info(
      { event: 'pool.unloaded', pool_id: poolId },
      `pool ${poolId} unloaded (model retired)`,
    );
  }

  /** `POST /v1/pools/{id}/reload`: starts the reload; `done` settles when it finished either way. */
  reload(
    poolId: string,
    target: { modelRef: string } | { rollback: true },
    deadlineMs: number,
  ): { pool: PoolRuntime; done: Promise<void> } {
    const pool = this.#poolOrThrow(poolId);
    if (!this.#o.createSupervisor)
      throw new OrchError('NOT_IMPLEMENTED', 'reload needs engine management in this process');
    const done = this.#control.reload(pool, target, deadlineMs);
    done.catch((err: unknown) => this.#o.logger.error({ err, pool_id: poolId }, 'reload failed'));
    return { pool, done };
  }

  #poolOrThrow(id: string): PoolRuntime {
    const pool = this.#poolById(id);
    if (!pool) throw new OrchError('NOT_FOUND', `pool '${id}' not found`);
    return pool;
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
      usage: { ...s.usage },
      budget: remaining(s.usage, this.#poolById(s.poolId)?.config.budgets ?? NO_BUDGETS),
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
    for (const u of this.#poolListeners.values()) u();
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

  /** A task was bound to a replica: account its service to its tenant's observed share. */
  /** One line per refused admission (SPEC §12), with the pool when resolution got that far. */
  #logRejected(
    principal: Principal,
    input: SubmitInput,
    correlationId: string,
    err: OrchError,
    pool: PoolRuntime | undefined,
  ): void {
    this.#o.tracer?.rejected({
      correlationId,
      tenant: principal.tenant,
      taskId: input.taskId,
      code: err.code,
      atMs: this.#o.clock.now(),
      poolId: pool?.id,
    });
    this.#o.logger.info(
      {
        event: 'admission.rejected',
        job_id: input.taskId,
        session_id: input.sessionId,
        tenant_id: principal.tenant,
        correlation_id: correlationId,
        engine: pool?.config.engine ?? input.engine,
        pool_id: pool?.id,
        model_ref: input.modelRef,
        priority: input.priority,
        code: err.code,
      },
      err.message,
    );
  }

  #onDispatch(task: TaskRecord): void {
    const key = `${task.spec.tenant}\u0000${task.spec.priority}`;
    this.#shares.serve(key, Math.max(1, task.cost));
    for (const k of this.#shares.keys()) {
      const [tenant = '', priority = ''] = k.split('\u0000');
      this.#o.metrics.set('admission_share', { tenant, priority }, this.#shares.share(k));
    }
  }

  /** Terminal bookkeeping: quota slot, session budget usage, deadline attainment. */
  #onFinish(task: TaskRecord, pool: PoolRuntime): void {
    this.#quotas.release(task.spec.tenant);
    this.#o.tracer?.finished(tracedTask(task, pool, this.#o.clock.now()));
    this.#gauges.finished(task, pool);
    const session = this.#sessions.get(task.spec.sessionId);
    if (session?.tenant === task.spec.tenant) {
      session.usage.tokens += task.tokensIn + task.tokensOut;
      session.usage.wallMs += runMs(task);
      session.usage.cost += costOf(pool.config.prices, task.tokensIn, task.tokensOut);
    }
    const turn = {
      tokens: task.tokensIn + task.tokensOut,
      wallMs: runMs(task),
      cost: costOf(pool.config.prices, task.tokensIn, task.tokensOut),
    };
    // The durable ledger only serves budget checks: pools without session budgets skip the write.
    if (hasSessionBudget(pool.config.budgets))
      this.#o.ledger
        ?.add(task.spec.tenant, task.spec.sessionId, turn, this.#o.clock.now())
        .catch((err: unknown) =>
          this.#o.logger.error({ err, session_id: task.spec.sessionId }, 'budget ledger write failed'),
        );
  }

  /** Budget remainders of a running task's session, counting what the task used so far. */
  budgetRemainders(task: TaskRecord): Record<string, number> {
    const pool = this.#poolOf(task);
    const session = this.#sessions.get(task.spec.sessionId);
    const base = session?.tenant === task.spec.tenant ? session.usage : emptyUsage();
    const tokensIn = task.tokensIn || task.spec.promptTokens;
    const usage = {
      tokens: base.tokens + tokensIn + task.tokensOut,
      wallMs: base.wallMs + runMs(task, this.#o.clock.now()),
      cost: base.cost + costOf(pool.config.prices, tokensIn, task.tokensOut),
    };
    const r = remaining(usage, pool.config.budgets);
    const out: Record<string, number> = {};
    if (r.tokens !== undefined) out['tokens_remaining'] = r.tokens;
    if (r.wallMs !== undefined) out['time_remaining_ms'] = Math.floor(r.wallMs);
    if (r.cost !== undefined) out['cost_remaining'] = r.cost;
    return out;
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
    this.#gauges.replicasChanged(pool);
    // Tasks on a replica whose host is lost cannot finish: end them now (WORKER_RESET).
    for (const run of pool.running.values()) {
      const state = pool.replica(run.replicaId)?.state;
      if (state?.kind !== 'unready' || state.lost !== true) continue;
      const task = this.#tasks.get(run.taskId);
      if (task && !task.terminal) this.#dispatcher.abort(task, 'host-lost');
    }
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
    // Session expiry and the per-replica gauges walk every session: every 2 s is plenty, and
    // keeps a 100k-task backlog from pausing admission five times a second.
    if (this.#sweeps++ % 10 === 0) {
      this.#sessions.sweep();
      this.#gauges.refresh(this.#pools, this.#sessions.values());
    }
    for (const pool of this.#pools) {
      let changed = false;
      // Under overload (more queued than free slots), a task that could not finish by its
      // deadline even if it started now is ended early instead of waiting to fail (ETA-aware).
      const overloaded = pool.queue.size > pool.freeSlots();
      // Only entries due within the longest service time can be doomed: the deadline index
      // hands over just those, so a deep queue with distant deadlines costs nothing here.
      const horizon = overloaded ? (pool.predictor.serviceMsForCost(pool.queue.maxCost) ?? 0) : 0;
      for (const entry of pool.queue.dueBy(now + horizon)) {
        const task = this.#tasks.get(entry.id);
        if (!task) continue;
        const late = task.deadlineAtMs <= now;
        if (!late && !(overloaded && pool.cannotMeet(entry.cost, task.deadlineAtMs))) continue;
        pool.queue.remove(entry.id);
        changed = true;
        this.#lifecycle.finish(
          task,
          pool,
          replicaExhausted(
            pool,
            task,
            late ? 'before its deadline' : 'in time: it cannot finish before its deadline',
          ),
        );
      }
      if (changed) this.#updateQueueGauges(pool);
    }
  }

  /** Periodic, additive-only SSE `metrics` frames for every live task (ORCH-3100). */
  #metricsFrames(): void {
    const now = this.#o.clock.now();
    for (const task of this.#tasks.values()) {
      if (task.terminal) continue;
      const queued = task.state.kind === 'queued';
      // A queued task nobody is streaming needs no status frame: at 100k queued tasks, frames
      // for all of them would cost O(queue²) per period and grow every log.
      if (queued && !task.log.watched) continue;
      const pool = this.#poolOf(task);
      const ahead = queued ? (pool.queue.positionOf(task.spec.taskId) ?? 0) : 0;
      const remainingTokens = Math.max(0, task.spec.maxTokens - task.tokensOut);
      const serviceMs = pool.predictServiceMs(0, remainingTokens);
      const predictedFinishMs = (queued ? pool.predictStartMs(ahead) : 0) + (serviceMs ?? 0);
      task.log.append({
        type: 'metrics',
        data: {
          queue_depth: pool.queue.size,
          queue_position: ahead,
          on_time_probability: onTimeProbability(predictedFinishMs, task.deadlineAtMs - now),
          kv_warmth: task.kvWarm,
          tokens_out: task.tokensOut,
          // Unknown until the pool has measured its decode rate: omitted rather than guessed.
          eta_ms:
            serviceMs !== undefined && Number.isFinite(predictedFinishMs)
              ? Math.max(0, Math.ceil(predictedFinishMs))
              : undefined,
          pool_id: pool.id,
          ...this.budgetRemainders(task),
          ...(task.replicaId === undefined ? {} : { replica_id: task.replicaId }),
        },
      });
    }
  }
}

/** Wall time a task spent on replicas so far (all runs of a preempted task). */
export function runMs(task: TaskRecord, now = task.finishedAtMs ?? 0): number {
  const current =
    task.dispatchedAtMs === undefined || task.state.kind === 'queued'
      ? 0
      : Math.max(0, now - task.dispatchedAtMs);
  return task.priorRunMs + current;
}
