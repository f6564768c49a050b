/**
 * The orchestrator core as one facade: it composes admission (`admit.ts`), the task lifecycle
 * and its observers, the dispatcher, pool control and the periodic work (SSE `metrics` frames,
 * queued-deadline expiry, session sweep). The HTTP layer is a thin shell over this class; it gets
 * read-only views of tasks.
 */
import type { ResolvedConfig, ResolvedPool, ResolvedTenant } from '../config/resolved-config.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { Accepted, Principal, SubmitInput } from '../domain/submit.js';
import type { Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { TaskJournalEntry } from '../persistence/store.js';
import type { TaskJournal } from '../persistence/task-journal.js';
import type { TaskSpec } from '../domain/task.js';
import type { PoolSupervisor } from '../pool/replica.js';
import { ShareTracker } from '../scheduler/share-tracker.js';
import { TenantQuotas } from '../scheduler/tenant-quotas.js';
import { remaining, type BudgetRemaining, type SessionUsage } from '../sessions/budget.js';
import { SessionLedger, type DurableLedger } from '../sessions/session-ledger.js';
import { SessionStore, type Session } from '../sessions/session-store.js';
import type { TaskTracer } from '../tracing/task-tracer.js';
import type { Logger } from '../util/logger.js';
import { Admission } from './admit.js';
import { Dispatcher } from './dispatcher.js';
import { FleetGauges } from './fleet-gauges.js';
import { PoolControl } from './pool-control.js';
import { PoolRuntime } from './pool-runtime.js';
import {
  budgetSettlement,
  fairShares,
  fleetOutcomes,
  quotaRelease,
  sessionAffinity,
  sloBreakers,
  taskSpans,
} from './task-accounting.js';
import { SloBreakerWatch } from './slo-shedding.js';
import { TaskLifecycle, type CancelReason, type TaskObserver } from './task-lifecycle.js';
import type { TaskRecord, TaskView } from './task-record.js';
import { TaskTable, type EndedTask } from './task-table.js';
import { queueDepthObserver, refusalTelemetry, taskTelemetry } from './task-telemetry.js';
import { PeriodicWork } from './periodic-work.js';
import { admitsWork, sameReplicaSet, siblingsOf } from './replica-set.js';
import { SEQ_EPOCH } from '../tasks/event-log.js';
import type { AdmissionPolicy } from '../plugins/plugin-host.js';
import { PLACEMENT_POLICIES } from '../scheduler/policies/registry.js';

export { defaultSeed } from './admit.js';
export { runMs } from './task-record.js';

export interface OrchestratorOptions {
  readonly config: ResolvedConfig;
  readonly supervisors: ReadonlyMap<string, PoolSupervisor>;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Builds a supervisor for a pool configuration (reloads); without it, reload answers 501. */
  readonly createSupervisor?: (pool: ResolvedPool) => Promise<PoolSupervisor>;
  /** Resolves a reload's `new_model_ref` to the model to load (catalog references, trust policy); throws the refusal. */
  readonly resolveReloadTarget?: (pool: ResolvedPool, ref: string) => Promise<ResolvedPool['model']>;
  /** Reloads a remote pool on its hosts (pool-managerd commands); the cause on failure. */
  readonly remoteReload?: (
    pool: PoolRuntime,
    modelPath: string,
    digest?: string,
  ) => Promise<string | undefined>;
  /** Stops a remote pool's engines on its hosts (after a drain). */
  readonly remoteStop?: (pool: PoolRuntime) => Promise<string | undefined>;
  /** Canary routing of new sessions: the model id a request for `modelRef` goes to. */
  readonly route?: (modelRef: string, sessionId: string) => string;
  /** The durable session budgets ledger (usage of finished turns). */
  readonly ledger?: DurableLedger;
  /** Catalog lifecycle state of a model id (Deprecated blocks new sessions). */
  readonly modelState?: (modelId: string) => string | undefined;
  /** Why a pool's model is untrusted under `strict` (admission answers 403 UNTRUSTED_ARTIFACT). */
  readonly untrusted?: (poolId: string, modelId: string) => string | undefined;
  /** The host's GPUs (telemetry in pool health). */
  readonly gpus?: () => readonly GpuInfo[] | undefined;
  /** Task spans (OpenTelemetry); absent: no tracing. */
  readonly tracer?: TaskTracer;
  /** Bound on one replica's tokenizer round trip at admission (default 5 s). */
  readonly tokenizeTimeoutMs?: number;
  /**
   * The task journal (SPEC §17.1): admissions, dispatches and endings are written to it, and an
   * acceptance is answered once it is committed. Absent: tasks do not survive a restart.
   */
  readonly journal?: TaskJournal;
  /** Admission policy plugins (SPEC §10); absent: the built-in policy alone. */
  readonly policy?: AdmissionPolicy;
}

/** What {@link Orchestrator.recover} did with a predecessor's journal. */
export interface Recovery {
  /** Queued tasks queued again, with their deadlines. */
  readonly requeued: number;
  /** Tasks that were running: ended `WORKER_RESET`. */
  readonly reset: number;
  /** Queued tasks whose deadline passed meanwhile: ended `DEADLINE_UNMET`. */
  readonly expired: number;
  /** Used ids remembered again (ended tasks included). */
  readonly remembered: number;
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

const NO_BUDGETS = { sessionTokens: undefined, sessionWallMs: undefined, sessionCost: undefined };
const SWEEP_INTERVAL_MS = 200;
/** Journals a task's dispatch and its end (its acceptance is journaled by admission). */
function journaling(journal: TaskJournal, clock: Clock): TaskObserver {
  return {
    dispatched: (task) => journal.running(task.spec.taskId),
    finished: (task, _pool, t) =>
      journal.ended(
        task.spec.taskId,
        t.kind === 'failed' || t.kind === 'evicted' ? { kind: t.kind, code: t.error.code } : { kind: t.kind },
        clock.now(),
      ),
  };
}

export class Orchestrator {
  readonly #o: OrchestratorOptions;
  readonly #pools: PoolRuntime[];
  readonly #table: TaskTable;
  readonly #sessions: SessionStore;
  readonly #ledger: SessionLedger;
  readonly #quotas: TenantQuotas;
  readonly #lifecycle: TaskLifecycle;
  readonly #admission: Admission;
  readonly #dispatcher: Dispatcher;
  readonly #control: PoolControl;
  readonly #gauges: FleetGauges;
  readonly #queueDepth: ReturnType<typeof queueDepthObserver>;
  readonly #timers: NodeJS.Timeout[] = [];
  /** Per pool: unsubscribes from its current supervisor (which a reload replaces). */
  readonly #poolListeners = new Map<string, () => void>();
  #closing = false;
  /** When the shutdown's drain deadline passes (clock ms): new work is told to retry after it. */
  #closingUntilMs = 0;
  /** Tasks taken back from the journal: their streams restarted, so any `Last-Event-ID` replays. */

  constructor(opts: OrchestratorOptions) {
    this.#o = opts;
    this.#table = new TaskTable({ rememberedIds: opts.config.storage.rememberedTaskIds });
    const { config, metrics, logger, clock } = opts;
    this.#gauges = new FleetGauges(metrics);
    this.#pools = config.pools.map((p) => {
      const sup = opts.supervisors.get(p.id);
      if (!sup) throw new Error(`no supervisor for pool ${p.id}`);
      return new PoolRuntime(p, sup, {
        weights: config.fairness.weights,
        tenantWeight: (t) => config.fairness.tenants.get(t)?.weight ?? 1,
        mode: config.scheduling.mode,
        deadlineSlackTokens: config.scheduling.deadlineSlackTokens,
        clock,
      });
    });
    this.#quotas = new TenantQuotas(config.fairness.tenants);
    const poolCfg = (id: string) => config.pools.find((p) => p.id === id);
    this.#sessions = new SessionStore({
      clock,
      ttlMs: (id) => poolCfg(id)?.session.ttlMs ?? 600_000,
      maxTurns: (id) => poolCfg(id)?.session.maxTurns ?? 8,
      sameSet: (a, b) => {
        const pa = this.#poolById(a);
        const pb = this.#poolById(b);
        return a === b || (pa !== undefined && pb !== undefined && sameReplicaSet(pa, pb));
      },
    });
    this.#ledger = new SessionLedger({
      sessions: this.#sessions,
      clock,
      durable: opts.ledger,
      onWriteError: (err, sessionId) =>
        logger.error({ err, session_id: sessionId }, 'budget ledger write failed'),
    });
    this.#queueDepth = queueDepthObserver(metrics);
    const breakers = new SloBreakerWatch({ metrics, logger, clock });
    this.#lifecycle = new TaskLifecycle({
      clock,
      table: this.#table,
      retentionMs: config.sse.retentionMs,
      maxEventsPerTask: config.sse.maxEventsPerTask,
      onObserverError: (err, step, task) =>
        logger.error({ err, step, job_id: task.spec.taskId }, 'task observer failed'),
      observers: [
        quotaRelease(this.#quotas),
        budgetSettlement(this.#ledger),
        sessionAffinity(this.#sessions),
        fairShares(new ShareTracker(config.fairness.shareWindowTokens), metrics),
        fleetOutcomes(this.#gauges),
        sloBreakers(breakers),
        ...(opts.tracer ? [taskSpans(opts.tracer, clock)] : []),
        ...(opts.journal ? [journaling(opts.journal, clock)] : []),
        this.#queueDepth,
        taskTelemetry(metrics, logger, config.fairness.weights),
      ],
    });
    this.#admission = new Admission({
      config,
      pools: () => this.#pools,
      table: this.#table,
      sessions: this.#sessions,
      ledger: this.#ledger,
      quotas: this.#quotas,
      lifecycle: this.#lifecycle,
      metrics,
      clock,
      route: opts.route,
      modelState: opts.modelState,
      untrusted: opts.untrusted,
      journal: opts.journal,
      policy: opts.policy,
      ...(opts.tokenizeTimeoutMs === undefined ? {} : { tokenizeTimeoutMs: opts.tokenizeTimeoutMs }),
      onRefused: refusalTelemetry(metrics, logger, clock, opts.tracer),
    });
    this.#dispatcher = new Dispatcher({
      lifecycle: this.#lifecycle,
      table: this.#table,
      metrics,
      logger,
      clock,
      sessions: this.#sessions,
      ledger: this.#ledger,
      preemption: config.scheduling.preemption,
      placement: PLACEMENT_POLICIES[config.scheduling.placement],
      siblings: (pool) => siblingsOf(this.#pools, pool),
    });
    const create = opts.createSupervisor;
    this.#control = new PoolControl({
      logger,
      createSupervisor: (p) =>
        create
          ? create(p)
          : Promise.reject(new OrchError('NOT_IMPLEMENTED', 'this orchestrator cannot build engines')),
      tasksOf: (pool) => [...this.#table.live()].filter((t) => t.poolId === pool.id),
      endQueued: (pool, task, error) => {
        const record = this.#table.get(task.spec.taskId);
        if (record) this.#lifecycle.finish(record, pool, { kind: 'failed', error });
      },
      abortRunning: (task) => {
        const record = this.#table.get(task.spec.taskId);
        if (record) this.#dispatcher.abort(record, 'drain');
      },
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
      handOver: (pool, task) => {
        const record = this.#table.get(task.spec.taskId);
        const to = siblingsOf(this.#pools, pool)
          .filter(admitsWork)
          .sort((a, b) => a.predictStartMs(a.queue.size) - b.predictStartMs(b.queue.size))[0];
        if (!record || !to || !this.#lifecycle.move(record, pool, to, 'tail')) return false;
        this.#dispatcher.pump(to);
        return true;
      },
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
    const periodic = new PeriodicWork({
      pools: this.#pools,
      table: this.#table,
      lifecycle: this.#lifecycle,
      sessions: this.#sessions,
      ledger: this.#ledger,
      gauges: this.#gauges,
      clock,
      sloBreakers: breakers,
    });
    this.#timers.push(setInterval(() => periodic.sweep(), SWEEP_INTERVAL_MS).unref());
    this.#timers.push(setInterval(() => periodic.metricsFrames(), config.sse.metricsIntervalMs).unref());
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

  /**
   * What is held right now (diagnostics and tests): `max_concurrent` slots, session budget
   * reservations and live tasks. With nothing live, the first two are zero — nothing leaks.
   */
  accounting(): { quotaSlots: number; budgetReservations: number; liveTasks: number } {
    let liveTasks = 0;
    for (const _ of this.#table.live()) liveTasks++;
    return { quotaSlots: this.#quotas.held, budgetReservations: this.#ledger.reservations, liveTasks };
  }

  /** Admission (SPEC §2.1; auth and schema ran in the HTTP layer), enqueue and dispatch. */
  async submit(principal: Principal, input: SubmitInput, correlationId: string): Promise<Accepted> {
    if (this.#closing)
      throw new OrchError('POOL_UNAVAILABLE', 'the orchestrator is shutting down', {
        retryAfterMs: Math.max(1_000, this.#closingUntilMs - this.#o.clock.now()),
      });
    const accepted = await this.#admission.admit(principal, input, correlationId);
    if (accepted.ended !== undefined) {
      // A replay: the original acceptance may still be on its way to the journal.
      if (this.#o.journal) await this.#o.journal.committed();
      return accepted;
    }
    const pool = this.#table.get(accepted.taskId)?.poolId;
    const runtime = pool === undefined ? undefined : this.#poolById(pool);
    if (runtime) this.#dispatcher.pump(runtime);
    // Answered once durable: a client that read 202 finds its task after a crash (group commit).
    // Without a journal nothing is awaited: callers see the task as admission left it.
    if (this.#o.journal) await this.#o.journal.committed();
    return accepted;
  }

  /**
   * Takes back what a predecessor on the same store journaled (SPEC §17.1), before any new
   * admission: used ids are remembered again; queued tasks are queued again with their ids and
   * absolute deadlines (ended `DEADLINE_UNMET` when it passed); tasks that were running end with
   * `WORKER_RESET`, readable from their restarted streams. Entries come oldest accepted first.
   */
  recover(entries: readonly TaskJournalEntry[]): Recovery {
    const now = this.#o.clock.now();
    let requeued = 0;
    let reset = 0;
    let expired = 0;
    for (const e of entries) {
      this.#table.remember(e.taskId, {
        tenant: e.tenant,
        bodyDigest: e.bodyDigest,
        acceptance: e.acceptance as unknown as Accepted,
      });
      if (e.state === 'ended' || this.#table.get(e.taskId)) continue;
      const spec = e.spec as unknown as TaskSpec;
      const pool = this.#poolById(e.poolId);
      if (!pool) {
        this.#o.journal?.ended(e.taskId, { kind: 'failed', code: 'POOL_UNAVAILABLE' }, now);
        continue;
      }
      const acceptance = { cost: e.cost, position: pool.queue.size, predictedStartMs: 0, kvWarm: false };
      // Journaled before the server listens (the caller waits for the commit), so a second crash
      // cannot hand out this run's event ids again.
      const restarts = (e.restarts ?? 0) + 1;
      this.#o.journal?.restarted(e.taskId, restarts);
      const firstSeq = restarts * SEQ_EPOCH + 1;
      if (e.state === 'queued' && e.deadlineAtMs > now && spec.boundToRequest !== true) {
        pool.queue.adopt({
          id: e.taskId,
          priority: spec.priority,
          tenant: spec.tenant,
          cost: e.cost,
          deadlineAtMs: e.deadlineAtMs,
        });
        this.#lifecycle.accept(spec, pool, acceptance, firstSeq);
        requeued++;
        continue;
      }
      const task = this.#lifecycle.accept(spec, pool, acceptance, firstSeq);
      const expiredHere = e.state === 'queued' && e.deadlineAtMs <= now;
      if (expiredHere) expired++;
      else reset++;
      const engine = pool.config.engine;
      this.#lifecycle.finish(task, pool, {
        kind: 'failed',
        error: expiredHere
          ? {
              code: 'DEADLINE_UNMET',
              message: `the deadline of ${spec.deadlineMs} ms passed while the orchestrator restarted`,
              engine,
              retriable: false,
            }
          : {
              code: 'WORKER_RESET',
              message:
                e.state === 'running'
                  ? 'the orchestrator restarted while the task ran: it did not finish (submit it again under a new task_id)'
                  : 'the orchestrator restarted: the HTTP request waiting for this task ended with it (submit it again)',
              engine,
              retriable: true,
            },
      });
    }
    for (const pool of this.#pools) this.#dispatcher.pump(pool);
    return { requeued, reset, expired, remembered: entries.length };
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
  async reload(
    poolId: string,
    target: { modelRef: string } | { rollback: true },
    deadlineMs: number,
  ): Promise<{ pool: PoolRuntime; done: Promise<void> }> {
    const pool = this.#poolOrThrow(poolId);
    if (!this.#o.createSupervisor)
      throw new OrchError('NOT_IMPLEMENTED', 'reload needs engine management in this process');
    // The reference is resolved and trust-checked before anything drains: a refusal is the answer.
    const resolve = this.#o.resolveReloadTarget;
    const resolved =
      'modelRef' in target && resolve ? { model: await resolve(pool.config, target.modelRef) } : target;
    const done = this.#control.reload(pool, resolved, deadlineMs);
    done.catch((err: unknown) => this.#o.logger.error({ err, pool_id: poolId }, 'reload failed'));
    return { pool, done };
  }

  #poolOrThrow(id: string): PoolRuntime {
    const pool = this.#poolById(id);
    if (!pool) throw new OrchError('NOT_FOUND', `pool '${id}' not found`);
    return pool;
  }

  /** Queued and running tasks of every tenant (listings filter by tenant): read-only views. */
  liveTasks(): IterableIterator<TaskView> {
    return this.#table.live();
  }

  /** Recently ended tasks of every tenant, newest first (a bounded list). */
  endedTasks(): IterableIterator<TaskView | EndedTask> {
    return this.#table.ended();
  }

  /** A task the principal may see; 404 for unknown ids and for other tenants' tasks (SPEC §11). */
  task(principal: Principal, id: string): TaskView {
    const task = this.#table.get(id);
    if (!task || task.spec.tenant !== principal.tenant) {
      throw new OrchError('NOT_FOUND', `task '${id}' not found`);
    }
    return task;
  }

  /**
   * Settles once every decision made so far (acceptances, cancels, endings) is in the task
   * journal; at once without one. A cancel or a session delete answers only after it, so a
   * `kill -9` right after a `204` cannot bring the task back (SPEC §17.1).
   */
  committed(): Promise<void> {
    return this.#o.journal?.committed() ?? Promise.resolve();
  }

  /**
   * Cancel (SPEC §2.3): synchronous terminal event first, then the engine request is aborted.
   * An ended task stays cancelable (`204`, nothing changes) for as long as its id is remembered.
   */
  cancel(principal: Principal, id: string): void {
    const task = this.#table.get(id);
    if (task && task.spec.tenant === principal.tenant) return this.#cancelTask(task, 'client');
    if (this.#table.usedBy(id) === principal.tenant) return;
    throw new OrchError('NOT_FOUND', `task '${id}' not found`);
  }

  #cancelTask(task: TaskRecord, reason: CancelReason): void {
    if (task.terminal) return;
    const pool = this.#poolOf(task);
    const queued = task.state.kind === 'queued';
    this.#lifecycle.finish(task, pool, {
      kind: 'canceled',
      reason,
      end: {
        tokens_out: task.tokensOut,
        decode_ms: task.firstTokenAtMs === undefined ? 0 : this.#o.clock.now() - task.firstTokenAtMs,
        canceled: true,
        finish_reason: 'canceled',
      },
    });
    if (!queued) this.#dispatcher.abort(task, 'client-cancel');
  }

  session(principal: Principal, id: string): SessionView {
    return this.#sessionView(this.#ownSession(principal, id));
  }

  /** The tenant's live sessions, most recently used first (never another tenant's). */
  sessionsOf(principal: Principal, limit: number): SessionView[] {
    const now = this.#o.clock.now();
    const own = [...this.#sessions.values()].filter(
      (s) => s.tenant === principal.tenant && s.expiresAtMs > now,
    );
    own.sort((a, b) => b.lastUsedAtMs - a.lastUsedAtMs || (a.id < b.id ? -1 : 1));
    return own.slice(0, limit).map((s) => this.#sessionView(s));
  }

  #sessionView(s: Session): SessionView {
    const pool = this.#poolById(s.poolId);
    const reserved = this.#ledger.reserved(s.tenant, s.id);
    return {
      sessionId: s.id,
      ttlMsRemaining: this.#sessions.ttlRemainingMs(s),
      turns: s.turns,
      kvBytes: this.#kvBytes(s),
      kvWarmth:
        pool?.kvWarmOn(s.lastReplicaId, { tenant: s.tenant, sessionId: s.id, prompt: undefined }) === true,
      replicaId: s.lastReplicaId,
      usage: { ...s.usage },
      budget: remaining(
        {
          tokens: s.usage.tokens + reserved.tokens,
          wallMs: s.usage.wallMs + reserved.wallMs,
          cost: s.usage.cost + reserved.cost,
        },
        pool?.config.budgets ?? NO_BUDGETS,
      ),
    };
  }

  /**
   * Deletes the tenant's session (SPEC §17 §2.4): its queued and running tasks are canceled
   * (`reason="session-deleted"`) and its KV is erased on the replica holding it, where the engine
   * can erase per slot (llama.cpp); elsewhere the engine's own cache eviction reclaims it.
   */
  deleteSession(principal: Principal, id: string): void {
    const s = this.#ownSession(principal, id);
    for (const task of [...this.#table.live()])
      if (task.spec.tenant === s.tenant && task.spec.sessionId === s.id)
        this.#cancelTask(task, 'session-deleted');
    this.#sessions.delete(s.tenant, s.id);
    // Its prompts may still be cached (shared prefixes), but the session itself is warm nowhere.
    this.#poolById(s.poolId)?.forgetSession({ tenant: s.tenant, sessionId: s.id });
    this.#eraseKv(s);
  }

  #eraseKv(s: Session): void {
    if (s.lastReplicaId === undefined || s.lastSlotId === undefined) return;
    const replica = this.#poolById(s.poolId)?.replica(s.lastReplicaId);
    const erase = replica?.adapter.eraseKv?.bind(replica.adapter);
    if (!erase || replica?.state.kind !== 'ready') return;
    const slot = s.lastSlotId;
    erase(slot, AbortSignal.timeout(5_000)).then(
      () =>
        this.#o.logger.info(
          { event: 'session.kv_erased', session_id: s.id, tenant_id: s.tenant, replica_id: replica.id, slot },
          'session KV erased',
        ),
      (err: unknown) =>
        this.#o.logger.warn(
          { err, event: 'session.kv_erase_failed', session_id: s.id, replica_id: replica.id, slot },
          'session KV erase failed',
        ),
    );
  }

  #ownSession(principal: Principal, id: string): Session {
    const s = this.#sessions.get(principal.tenant, id);
    if (!s) throw new OrchError('NOT_FOUND', `session '${id}' not found`);
    return s;
  }

  /** KV bytes held for the session: tokens resident × per-token KV size of the model (estimate). */
  #kvBytes(s: Session): number {
    return s.lastReplicaId === undefined ? 0 : s.kvTokens * 2 * 4 * 64 * 2;
  }

  /** True from the start of {@link close} on. */
  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Stop admitting; keep queued tasks journaled for the next start (`shutdown.keep_queued`, with
   * a journal) or end them; let running ones finish within `drainMs`, then abort them.
   */
  async close(drainMs = 5_000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#closingUntilMs = this.#o.clock.now() + drainMs;
    for (const t of this.#timers) clearInterval(t);
    for (const u of this.#poolListeners.values()) u();
    const keep = this.#o.journal !== undefined && this.#o.config.shutdown.keepQueued;
    for (const task of [...this.#table.live()]) {
      if (task.state.kind !== 'queued') continue;
      if (keep && task.spec.boundToRequest !== true) {
        // Out of the queue, so the drain does not start it; nothing is journaled, so the next
        // start on this store queues it again (SPEC §17.1).
        this.#poolOf(task).queue.remove(task.spec.taskId);
        continue;
      }
      this.#lifecycle.finish(task, this.#poolOf(task), {
        kind: 'failed',
        error: { code: 'POOL_UNAVAILABLE', message: 'the orchestrator is shutting down', retriable: true },
      });
    }
    const drained = this.#dispatcher.idle();
    const timeout = new Promise<void>((r) => setTimeout(r, drainMs).unref());
    await Promise.race([drained, timeout]);
    for (const task of this.#table.live())
      if (task.state.kind !== 'queued') this.#dispatcher.abort(task, 'shutdown');
    await this.#dispatcher.idle();
  }

  #poolOf(task: TaskView): PoolRuntime {
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
      const task = this.#table.get(run.taskId);
      if (task && !task.terminal) this.#dispatcher.abort(task, 'host-lost');
    }
    this.#dispatcher.pump(pool);
  }
}
