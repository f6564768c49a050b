/**
 * Admission (SPEC §2.1, §17): one sequence, read top to bottom in `admit()`. Authentication and
 * schema validation ran at the HTTP edge; then
 *
 *   2 normalize   defaults and clamps (`expected_tokens` ≤ `max_tokens`); a used id with the
 *                 same request is answered with its original acceptance, with another is 409
 *   3 resolve     model → replica set → member pool, engine, workload, readiness; canary
 *                 routing; lifecycle
 *   4 guardrails  ctx; chat and sampling fields the engine honours; SLO shedding (batch work of a pool whose SLO breaker is open, ORCH-3040);
 *                 session budget (cheap checks first), then the engine's tokenizer:
 *                 prompt tokens + `max_tokens` ≤ ctx, and the budget reserved
 *   5 quotas      the tenant's rate bucket and `max_concurrent`
 *   5b plugins    the admission policy plugins (SPEC §10): accept, refuse with a typed error, or
 *                 adjust priority and weight within their configured bounds
 *   5c placement  the placement plugins: which replicas of the replica set the task may run on
 *                 and which it prefers (applied at every dispatch of it)
 *   6 deadline    predicted finish within `deadline_ms`, planning soft preemption if it helps
 *   7 queue       the full-queue policy's plan
 *   → commit      only now are victims evicted and the task enqueued
 *
 * Every step either passes or throws a typed `OrchError`. A step that charges something
 * (rate token, budget reservation) registers its undo, and a refusal undoes them all: a refused
 * request changes nothing.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { Accepted, Principal, SubmitInput } from '../domain/submit.js';
import type { TaskPlacement, TaskSpec } from '../domain/task.js';
import type { Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { TaskJournal } from '../persistence/task-journal.js';
import type { TenantQuotas } from '../scheduler/tenant-quotas.js';
import { costOf, emptyUsage, hasSessionBudget, remaining, type SessionUsage } from '../sessions/budget.js';
import type { SessionLedger } from '../sessions/session-ledger.js';
import type { Session, SessionStore } from '../sessions/session-store.js';
import {
  aheadOf,
  backpressureError,
  checkBudget,
  checkCtx,
  checkEngineFields,
  countPromptTokens,
  predictFor,
  quotaError,
  resolvePool,
} from './admission.js';
import type { PoolRuntime, QueuedTask } from './pool-runtime.js';
import { memberFor, placementCandidates } from './placement-candidates.js';
import { promptTokenBound } from './prompt-token-bound.js';
import { admitsWork, sameReplicaSet } from './replica-set.js';
import { checkSloBreaker } from './slo-shedding.js';
import { refuseUntrusted, type UntrustedCause } from './trust-check.js';
import type { AdmissionAdjustment, AdmissionPolicy, AdmissionQuery } from '../plugins/plugin-host.js';
import type { TaskLifecycle } from './task-lifecycle.js';
import type { TaskTable } from './task-table.js';

/** Default seed: a stable hash of the task id (SPEC §2.1), within llama.cpp's 32-bit seed range. */
export function defaultSeed(taskId: string): number {
  return createHash('sha256').update(taskId).digest().readUInt32BE(0) % 0xffff_fffe;
}

// The package is CommonJS with an ESM-style declaration: under nodenext the function is `default`.
type Canonicalize = (input: unknown) => string | undefined;
const canonicalize: Canonicalize =
  canonicalizeModule.default ?? (canonicalizeModule as unknown as Canonicalize);

/**
 * Digest of a validated request in canonical form (RFC 8785): key order and absent optional
 * fields make no difference, so a client's retry of the same request matches (SPEC §17 §2.1).
 */
export function requestDigest(input: SubmitInput): string {
  return createHash('sha256')
    .update(canonicalize(input) ?? '', 'utf8')
    .digest('base64url');
}

/** Told of every refused submission (logs, metrics, spans), with the pool when known. */
export type RefusalObserver = (r: {
  readonly principal: Principal;
  readonly input: SubmitInput;
  readonly correlationId: string;
  readonly error: OrchError;
  readonly pool: PoolRuntime | undefined;
}) => void;

export interface AdmissionOptions {
  readonly config: ResolvedConfig;
  readonly pools: () => readonly PoolRuntime[];
  readonly table: TaskTable;
  readonly sessions: SessionStore;
  readonly ledger: SessionLedger;
  readonly quotas: TenantQuotas;
  readonly lifecycle: TaskLifecycle;
  readonly metrics: OrchMetrics;
  readonly clock: Clock;
  readonly onRefused: RefusalObserver;
  /** Canary routing of new sessions: the model id a request for `modelRef` goes to. */
  readonly route?: ((modelRef: string, sessionId: string) => string) | undefined;
  /** Catalog lifecycle state of a model id (Deprecated blocks new sessions). */
  readonly modelState?: ((modelId: string) => string | undefined) | undefined;
  /** Bound on one replica's tokenizer round trip (then the next replica is asked). */
  readonly tokenizeTimeoutMs?: number;
  /** Why a pool's model is untrusted under `strict` (step 3: 403 UNTRUSTED_ARTIFACT). */
  readonly untrusted?: UntrustedCause | undefined;
  /** Where accepted tasks are journaled (SPEC §17.1); absent: nothing survives a restart. */
  readonly journal?: TaskJournal | undefined;
  /** Policy plugins consulted at step 5b (SPEC §10); absent: none. */
  readonly policy?: AdmissionPolicy | undefined;
}

/** Undo functions of the steps that charged something. */
class Charges {
  readonly #undo: (() => void)[] = [];
  add(undo: () => void): void {
    this.#undo.push(undo);
  }
  undoAll(): void {
    for (const u of this.#undo.splice(0).reverse()) u();
  }
  /** The request is admitted: what was charged stays charged. */
  keep(): void {
    this.#undo.length = 0;
  }
}

/** What the guardrail step learned about the task. */
interface Guarded {
  /** The engine's count, or an upper bound on it when the bound alone proved the fit. */
  readonly promptTokens: number;
  /** `promptTokens` is the bound, not the engine's count. */
  readonly bounded?: true;
  /** `max_tokens`, or the context left after the prompt when the request left it open. */
  readonly maxTokens: number;
  readonly cost: number;
  readonly uncached: number;
  readonly committed: SessionUsage;
}

export class Admission {
  readonly #o: AdmissionOptions;

  constructor(opts: AdmissionOptions) {
    this.#o = opts;
  }

  /** Admits `input` for `principal` and enqueues it, or throws the typed refusal. */
  async admit(principal: Principal, raw: SubmitInput, correlationId: string): Promise<Accepted> {
    const charges = new Charges();
    let pool: PoolRuntime | undefined;
    try {
      const digest = requestDigest(raw);
      const replay = this.replayUsedId(principal, raw, digest);
      if (replay) return replay;
      let input = this.normalize(raw);
      refuseUntrusted(this.#o.pools(), input, this.#o.untrusted);
      pool = this.resolve(principal, input);
      this.checkLifecycle(principal, input, pool);
      checkCtx(pool, input);
      checkEngineFields(pool, input);
      checkSloBreaker(pool, input.priority, this.#o.metrics, this.#o.clock.now());
      const g = await this.guardrails(principal, input, pool);
      // The tokenizer round trip let an earlier submission of the same id be accepted meanwhile.
      const raced = this.replayUsedId(principal, raw, digest);
      if (raced) return raced;
      if (g.maxTokens !== input.maxTokens) input = { ...input, maxTokens: g.maxTokens };
      this.reserveBudget(charges, principal, input, pool, g);
      this.chargeQuotas(charges, principal, pool);
      let queued = g;
      if (this.#o.policy) {
        const adj = await this.consultPlugins(this.#o.policy, principal, input, pool, g);
        // The plugin call let an earlier submission of the same id be accepted meanwhile.
        const replayed = this.replayUsedId(principal, raw, digest);
        if (replayed) {
          charges.undoAll();
          return replayed;
        }
        if (adj.priority !== undefined && adj.priority !== input.priority)
          input = { ...input, priority: adj.priority };
        if (adj.weight !== undefined) queued = { ...g, cost: g.cost / adj.weight };
      }
      let placement: TaskPlacement | undefined;
      if (this.#o.policy?.placement !== undefined && this.#o.policy.placesTasks === true) {
        const placed = await this.place(this.#o.policy, principal, input, pool, g);
        const replayed = this.replayUsedId(principal, raw, digest);
        if (replayed) {
          charges.undoAll();
          return replayed;
        }
        if (placed) ({ pool, placement } = placed);
      }
      const victims = this.planDeadline(pool, input, g);
      const plan = this.planQueue(principal, pool, input, queued, victims);
      const accepted = this.commit(
        charges,
        principal,
        input,
        correlationId,
        pool,
        g,
        victims,
        plan,
        digest,
        placement,
      );
      this.#o.policy?.admitted(principal.tenant, g.promptTokens + input.maxTokens, this.#o.clock.now());
      return accepted;
    } catch (err) {
      charges.undoAll();
      if (err instanceof OrchError)
        this.#o.onRefused({ principal, input: raw, correlationId, error: err, pool });
      throw err;
    }
  }

  /** Step 2: `expected_tokens` is a hint, never more than the task may produce (SPEC §17). */
  normalize(input: SubmitInput): SubmitInput {
    const max = input.workload === 'completion' ? input.maxTokens : 0;
    const expected = input.expectedTokens === undefined ? undefined : Math.min(input.expectedTokens, max);
    return expected === input.expectedTokens ? input : { ...input, expectedTokens: expected };
  }

  /**
   * Step 2: a task id is used once (ORCH-3024, SPEC §17 §2.1). The same tenant resubmitting the
   * same request (canonical digest) gets the original acceptance back, marked `ended` once the
   * task ended; any other use of the id is `409 CONFLICT`. Undefined: the id is new.
   */
  replayUsedId(principal: Principal, input: SubmitInput, digest: string): Accepted | undefined {
    const used = this.#o.table.usedId(input.taskId);
    if (!used) return undefined;
    if (used.tenant === principal.tenant && used.bodyDigest === digest && used.acceptance)
      return { ...used.acceptance, ended: used.ended };
    throw new OrchError(
      'CONFLICT',
      `task_id: '${input.taskId}' was already used for a different request (ORCH-3024); ` +
        'resubmit the identical request to read its acceptance, or use a new task_id',
    );
  }

  /**
   * Step 3: the pool for the model and engine. Canary routing (ORCH-3072): the tenant's live
   * session stays with the model it started on; a new one may be sent to the canary's pools.
   */
  resolve(principal: Principal, input: SubmitInput): PoolRuntime {
    const pools = this.#o.pools();
    const session = this.#o.sessions.get(principal.tenant, input.sessionId);
    let modelRef = input.modelRef;
    const home = session ? pools.find((p) => p.id === session.poolId) : undefined;
    if (session) modelRef = home?.config.model.id ?? modelRef;
    else if (this.#o.route) modelRef = this.#o.route(input.modelRef, input.sessionId);
    return resolvePool(pools, modelRef === input.modelRef ? input : { ...input, modelRef }, home);
  }

  /** Step 3: Retired models take nothing; Deprecated ones keep their sessions only (ORCH-3070). */
  checkLifecycle(principal: Principal, input: SubmitInput, pool: PoolRuntime): void {
    const state = this.#o.modelState?.(pool.config.model.id);
    const where = { engine: pool.config.engine, poolId: pool.id };
    if (state === 'Retired')
      // Waiting does not bring a retired model back.
      throw new OrchError('POOL_UNAVAILABLE', `model '${pool.config.model.id}' is retired`, {
        ...where,
        retriable: false,
      });
    if (state !== 'Deprecated') return;
    const hasSession = this.#o.sessions.get(principal.tenant, input.sessionId) !== undefined;
    const mayOverride =
      input.override === true && this.#o.config.catalog.overrideTenants.includes(principal.tenant);
    if (!hasSession && !mayOverride)
      throw new OrchError(
        'MODEL_DEPRECATED',
        `model '${pool.config.model.id}' is deprecated: it takes no new sessions`,
        where,
      );
  }

  /**
   * Step 4: the local budget check first (`max_tokens` alone must fit), then prompt tokens +
   * `max_tokens` ≤ ctx, and the scheduling cost in tokens the engine must really process (a warm
   * session's prefix is cached). The engine's own tokenizer counts the prompt unless a cheap upper
   * bound (`promptTokenBound`) already proves the fit and nothing turns on the exact number:
   * session budgets charge it, plugins see it, `max_tokens` left open is sized from it, and a
   * deadline the bound's (higher) cost would miss may still be met by the exact one.
   */
  async guardrails(principal: Principal, input: SubmitInput, pool: PoolRuntime): Promise<Guarded> {
    const output = input.workload === 'completion' ? input.maxTokens : 0;
    const budgets = hasSessionBudget(pool.config.budgets);
    const durable = budgets
      ? await this.#o.ledger.committed(principal.tenant, input.sessionId, pool.config.budgets)
      : emptyUsage();
    if (budgets) checkBudget(pool, this.#budgetUsage(principal, input, durable), 0, output);
    const exact = budgets || this.#o.policy !== undefined || input.maxTokensFromCtx === true;
    const bound = exact ? undefined : promptTokenBound(pool, input);
    if (bound !== undefined) {
      const g = this.#guarded(principal, input, pool, bound, durable, true);
      // The bound only overstates the cost, so a deadline met with it is met with the exact count.
      if (predictFor(pool, input, g.cost, g.uncached).finishMs <= input.deadlineMs) return g;
    }
    const promptTokens = await countPromptTokens(pool, input, this.#o.tokenizeTimeoutMs ?? 5_000);
    return this.#guarded(principal, input, pool, promptTokens, durable);
  }

  #guarded(
    principal: Principal,
    input: SubmitInput,
    pool: PoolRuntime,
    promptTokens: number,
    durable: SessionUsage,
    bounded = false,
  ): Guarded {
    const own = this.#ownSession(principal, input, pool);
    const cached =
      own?.lastReplicaId !== undefined && input.kvHint !== 'cold' ? Math.min(own.kvTokens, promptTokens) : 0;
    const uncached = promptTokens - cached;
    const maxTokens =
      input.maxTokensFromCtx === true ? Math.max(1, input.ctx - promptTokens) : input.maxTokens;
    return {
      promptTokens,
      ...(bounded ? { bounded } : {}),
      maxTokens,
      uncached,
      cost: uncached + (input.workload === 'completion' ? (input.expectedTokens ?? maxTokens) : 0),
      committed: own ? { ...own.usage } : durable,
    };
  }

  /** Step 4: the session's budgets cover the task's worst case, which is reserved (SPEC §3.6). */
  reserveBudget(
    charges: Charges,
    principal: Principal,
    input: SubmitInput,
    pool: PoolRuntime,
    g: Guarded,
  ): void {
    const output = input.workload === 'completion' ? input.maxTokens : 0;
    if (!hasSessionBudget(pool.config.budgets)) return;
    checkBudget(pool, this.#budgetUsage(principal, input, g.committed), g.promptTokens, output);
    const { wallMs } = pool.config.timeouts;
    const reservation = {
      tokens: g.promptTokens + output,
      cost: costOf(pool.config.prices, g.promptTokens, output),
      // Wall time is not known up front: the predicted service time, else the watchdog's bound.
      wallMs: pool.predictServiceMs(g.uncached, input.expectedTokens ?? output) ?? wallMs,
    };
    charges.add(
      this.#o.ledger.reserve(
        principal.tenant,
        input.sessionId,
        input.taskId,
        reservation,
        pool.config.budgets,
      ),
    );
  }

  /** Step 5: the tenant's rate bucket and concurrency quota (ORCH-3006, ORCH-3077). */
  chargeQuotas(charges: Charges, principal: Principal, pool: PoolRuntime): void {
    const refusal = this.#o.quotas.check(principal.tenant, this.#o.clock.now());
    if (refusal) {
      this.#o.metrics.inc('admission_backpressure_events_total', {
        engine: pool.config.engine,
        policy: 'reject',
      });
      throw quotaError(pool, principal.tenant, refusal);
    }
    charges.add(() => this.#o.quotas.refund(principal.tenant));
  }

  /**
   * Step 5b: one call of the admission plugins per submission. A refusal is their typed error;
   * an overrunning or failing plugin costs at most its budget and the built-in policy decides.
   */
  consultPlugins(
    policy: AdmissionPolicy,
    principal: Principal,
    input: SubmitInput,
    pool: PoolRuntime,
    g: Guarded,
  ): Promise<AdmissionAdjustment> {
    return policy.admission({
      nowMs: this.#o.clock.now(),
      tenant: principal.tenant,
      task: taskQuery(input, pool, g),
      pool: {
        id: pool.id,
        engine: pool.config.engine,
        queueDepth: pool.queue.size,
        queueCapacity: pool.config.queue.capacity,
      },
    });
  }

  /**
   * Step 5c: one call of the placement plugins per admitted task, over every replica of its
   * replica set. Their decision travels with the task to every dispatch of it; when it allows no
   * replica of the chosen member, the task is queued on a member holding an allowed one.
   */
  async place(
    policy: AdmissionPolicy,
    principal: Principal,
    input: SubmitInput,
    pool: PoolRuntime,
    g: Guarded,
  ): Promise<{ pool: PoolRuntime; placement: TaskPlacement } | undefined> {
    const members = this.#o.pools().filter((p) => sameReplicaSet(p, pool));
    const session = input.kvHint === 'cold' ? undefined : this.#ownSession(principal, input, pool);
    const placement = await policy.placement?.({
      nowMs: this.#o.clock.now(),
      tenant: principal.tenant,
      task: taskQuery(input, pool, g),
      replicas: placementCandidates(members, session?.lastReplicaId),
    });
    if (placement === undefined) return undefined;
    if (placement.allow?.length === 0)
      throw new OrchError(
        'POOL_UNAVAILABLE',
        `plugin '${placement.plugin}' allows this task on no replica of model '${pool.config.model.id}'`,
        { engine: pool.config.engine, poolId: pool.id, retriable: false },
      );
    const member = memberFor(pool, members, placement, admitsWork);
    if (member === undefined)
      throw new OrchError(
        'POOL_UNAVAILABLE',
        `plugin '${placement.plugin}' placed the task on ${(placement.allow ?? []).join(', ')}: no pool holding them takes work now`,
        { engine: pool.config.engine, poolId: pool.id, retryAfterMs: 2_000 },
      );
    if (member !== pool) checkSloBreaker(member, input.priority, this.#o.metrics, this.#o.clock.now());
    return { pool: member, placement };
  }

  /**
   * Step 6 (ORCH-3079) with soft preemption (SPEC §3.5): when the deadline is infeasible only
   * because of queued lower-priority work that fairness would interleave first, plan to evict
   * that work — never running tasks. Nothing is evicted here; the commit does it.
   */
  planDeadline(
    pool: PoolRuntime,
    input: SubmitInput,
    g: Guarded,
  ): { predictedStartMs: number; ids: ReadonlySet<string> } {
    const fair = predictFor(pool, input, g.cost, g.uncached);
    if (fair.finishMs <= input.deadlineMs) return { predictedStartMs: fair.startMs, ids: new Set() };
    const unmet = (finishMs: number) => {
      const shown = Number.isFinite(finishMs) ? `${Math.ceil(finishMs)} ms` : 'never (no ready slot)';
      return new OrchError(
        'DEADLINE_UNMET',
        `deadline_ms: predicted completion in ${shown} misses the deadline of ${input.deadlineMs} ms`,
        { engine: pool.config.engine, poolId: pool.id },
      );
    };
    if (this.#o.config.scheduling.preemption === 'off') throw unmet(fair.finishMs);
    const urgent = predictFor(pool, input, g.cost, g.uncached, false);
    if (urgent.finishMs > input.deadlineMs) throw unmet(fair.finishMs);
    const count = aheadOf(pool, input.priority) - aheadOf(pool, input.priority, false);
    const ids = new Set(pool.queue.softPreemptionVictims(input.priority, count).map((e) => e.id));
    return { predictedStartMs: urgent.startMs, ids };
  }

  /** Step 7: the full-queue policy's plan (SPEC §3.2), with planned preemption victims as freed. */
  planQueue(
    principal: Principal,
    pool: PoolRuntime,
    input: SubmitInput,
    g: Guarded,
    victims: { ids: ReadonlySet<string> },
  ): { entry: QueuedTask; plan: Extract<ReturnType<PoolRuntime['queue']['planOffer']>, { kind: 'admit' }> } {
    const entry: QueuedTask = {
      id: input.taskId,
      priority: input.priority,
      tenant: principal.tenant,
      cost: g.cost,
      deadlineAtMs: this.#o.clock.now() + input.deadlineMs,
    };
    const plan = pool.queue.planOffer(entry, victims.ids);
    if (plan.kind === 'refused') {
      const policy = pool.config.queue.fullPolicy;
      this.#o.metrics.inc('admission_backpressure_events_total', { engine: pool.config.engine, policy });
      throw backpressureError(pool, plan, input.priority);
    }
    return { entry, plan };
  }

  /** The arrival is certain to be admitted: evict the planned victims, enqueue, start its stream. */
  commit(
    charges: Charges,
    principal: Principal,
    input: SubmitInput,
    correlationId: string,
    pool: PoolRuntime,
    g: Guarded,
    victims: { predictedStartMs: number; ids: ReadonlySet<string> },
    q: ReturnType<Admission['planQueue']>,
    digest: string,
    placement?: TaskPlacement,
  ): Accepted {
    const spec: TaskSpec = {
      ...input,
      ...(placement === undefined ? {} : { placement }),
      tenant: principal.tenant,
      seed: input.seed ?? defaultSeed(input.taskId),
      promptTokens: g.promptTokens,
      ...(g.bounded === true ? { promptTokensBounded: true } : {}),
      correlationId,
      acceptedAtMs: q.entry.deadlineAtMs - input.deadlineMs,
    };
    const offer = pool.queue.commitOffer(q.entry, q.plan, victims.ids);
    charges.keep();
    const session = this.#o.sessions.beginTurn(spec.tenant, spec.sessionId, pool.id);
    this.#o.ledger.adopt(session, g.committed);
    const predictedStartMs = Number.isFinite(victims.predictedStartMs) ? victims.predictedStartMs : 0;
    this.#o.lifecycle.accept(spec, pool, {
      cost: g.cost,
      position: offer.position,
      predictedStartMs,
      kvWarm: pool.kvWarmOn(session.lastReplicaId, spec),
    });
    this.#endVictims(pool, spec, victims.ids, offer.evicted);
    const accepted: Accepted = {
      taskId: spec.taskId,
      queuePosition: offer.position,
      predictedStartMs: Math.ceil(predictedStartMs),
      backoffMs: pool.queue.size > pool.freeSlots() ? pool.backoffMs() : 0,
      budget: remaining(this.#budgetUsage(principal, input, session.usage), pool.config.budgets),
    };
    this.#o.table.remember(spec.taskId, { tenant: spec.tenant, bodyDigest: digest, acceptance: accepted });
    this.#o.journal?.accepted({
      taskId: spec.taskId,
      tenant: spec.tenant,
      poolId: pool.id,
      bodyDigest: digest,
      spec: { ...spec },
      acceptance: { ...accepted },
      cost: g.cost,
      acceptedMs: spec.acceptedAtMs,
      deadlineAtMs: q.entry.deadlineAtMs,
      state: 'queued',
    });
    return accepted;
  }

  #endVictims(
    pool: PoolRuntime,
    spec: TaskSpec,
    preempted: ReadonlySet<string>,
    evicted: readonly QueuedTask[],
  ): void {
    const policy = pool.config.queue.fullPolicy;
    const why = `evicted from the full queue of pool '${pool.id}' (policy ${policy}) to admit newer work`;
    for (const v of evicted) this.#evict(pool, v.id, 'full-queue', why, policy === 'shed-low-priority');
    const soft = `preempted while queued (soft preemption) to admit ${spec.priority} task ${spec.taskId} within its deadline`;
    for (const id of preempted) this.#evict(pool, id, 'soft-preemption', soft, true);
  }

  /** An evicted task's stream ends with `QUEUE_FULL_DROP_LRU` (SPEC §3.2, §3.5). */
  #evict(
    pool: PoolRuntime,
    id: string,
    cause: 'full-queue' | 'soft-preemption',
    message: string,
    preempted: boolean,
  ): void {
    const task = this.#o.table.get(id);
    if (!task) return;
    this.#o.lifecycle.finish(task, pool, {
      kind: 'evicted',
      cause,
      error: {
        code: 'QUEUE_FULL_DROP_LRU',
        message,
        engine: pool.config.engine,
        retriable: true,
        ...(preempted ? { preempted: true } : {}),
      },
    });
  }

  /** The tenant's session in this pool, when it has one. */
  #ownSession(principal: Principal, input: SubmitInput, pool: PoolRuntime): Session | undefined {
    const s = this.#o.sessions.get(principal.tenant, input.sessionId);
    const home = s && this.#o.pools().find((p) => p.id === s.poolId);
    return home && sameReplicaSet(home, pool) ? s : undefined;
  }

  /** Finished turns plus what the session's other accepted tasks have reserved. */
  #budgetUsage(principal: Principal, input: SubmitInput, committed: SessionUsage): SessionUsage {
    const r = this.#o.ledger.reserved(principal.tenant, input.sessionId, input.taskId);
    return {
      tokens: committed.tokens + r.tokens,
      wallMs: committed.wallMs + r.wallMs,
      cost: committed.cost + r.cost,
    };
  }
}

/** The task as the plugin hooks see it. */
function taskQuery(input: SubmitInput, pool: PoolRuntime, g: Guarded): AdmissionQuery['task'] {
  return {
    taskId: input.taskId,
    sessionId: input.sessionId,
    workload: input.workload,
    modelRef: input.modelRef,
    engine: pool.config.engine,
    priority: input.priority,
    promptTokens: g.promptTokens,
    maxTokens: g.maxTokens,
    expectedTokens: input.expectedTokens,
    deadlineMs: input.deadlineMs,
  };
}
