/**
 * Turns queue decisions into engine calls: late binding to a replica (ORCH-3007), the token relay
 * into the task's event log, watchdog timeouts (ORCH-3016), session budgets during decode
 * (SPEC §3.6), hard preemption with resume (SPEC §3.5), and cancellation through AbortSignal.
 */
import type { Clock } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { ReplicaView } from '../pool/replica.js';
import { allows, constrainCandidates } from '../scheduler/policies/placement-constraint.js';
import { hasFreeSlot, type PlacementPolicy } from '../scheduler/policies/placement-policy.js';
import { PLACEMENT_POLICIES, VICTIM_POLICIES } from '../scheduler/policies/registry.js';
import type { VictimPolicy } from '../scheduler/policies/victim-policy.js';
import { costOf, exhausted, hasSessionBudget } from '../sessions/budget.js';
import type { SessionLedger } from '../sessions/session-ledger.js';
import type { SessionStore } from '../sessions/session-store.js';
import type { Logger } from '../util/logger.js';
import type { ErrorData } from '../domain/events.js';
import type { ReplicaLoad } from '../scheduler/placement.js';
import { finishReasonOf, generateRequestOf, resumable } from './generate-request.js';
import { failureOf, replicaExhausted, type Failed } from './failure.js';
import type { PoolRuntime } from './pool-runtime.js';
import type { AbortCause, TaskRecord } from './task-record.js';
import type { TaskLifecycle } from './task-lifecycle.js';
import type { TaskTable } from './task-table.js';
import { taskLogFields } from './task-telemetry.js';

export interface DispatcherOptions {
  readonly lifecycle: TaskLifecycle;
  readonly table: TaskTable;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly sessions: SessionStore;
  readonly ledger: SessionLedger;
  readonly preemption: 'soft' | 'hard' | 'off';
  /** Replica choice at dispatch (default: the built-in least-loaded with session affinity). */
  readonly placement?: PlacementPolicy;
  /** Running task to stop for hard preemption (default: lowest priority, newest first). */
  readonly victims?: VictimPolicy;
  /** The other members of a pool's replica set: queued work moves to whichever has a free slot. */
  readonly siblings?: (pool: PoolRuntime) => readonly PoolRuntime[];
}

/** Warm replicas at or above this utilization lose to cooler ones (ORCH-3009). */
const OVERLOAD_RATIO = 0.75;

export { replicaExhausted };

export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #running = new Set<Promise<void>>();
  /** Tasks that failed before their first token, to dispatch once more when their run is over. */
  readonly #redispatch = new Map<TaskRecord, ErrorData>();
  /** Pools with a hard preemption under way: one at a time, until its slot is free. */
  readonly #preempting = new Set<string>();

  readonly #placement: PlacementPolicy;
  readonly #victims: VictimPolicy;

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
    this.#placement = opts.placement ?? PLACEMENT_POLICIES['least-loaded'];
    this.#victims = opts.victims ?? VICTIM_POLICIES['lowest-priority-newest'];
  }

  /** Tasks currently bound to an engine request. */
  get running(): number {
    return this.#running.size;
  }

  /** Wait until every running engine request has ended. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /**
   * Dispatch queued tasks while a Ready replica has a free slot. Binding is late and spans the
   * replica set (SPEC §17 §4): a member with a free slot and nothing queued takes the next task
   * of a sibling that cannot start it, and a member that cannot start its next task hands it to
   * an idle sibling.
   */
  pump(pool: PoolRuntime): void {
    if (pool.paused) {
      this.#spill(pool);
      return;
    }
    // Tasks a placement plugin keeps off the replicas that are free now: the tasks behind them
    // (of other tenants) are served meanwhile instead of waiting at their back.
    const held = new Set<string>();
    const skip = (e: { id: string }): boolean => held.has(e.id);
    for (;;) {
      const next = pool.queue.peekNext(held.size > 0 ? skip : undefined);
      if (!next) {
        if (this.#takeFromSibling(pool)) continue;
        return;
      }
      const task = this.#o.table.get(next.id);
      if (!task || task.terminal) {
        pool.queue.remove(next.id);
        continue;
      }
      if (task.deadlineAtMs <= this.#o.clock.now()) {
        // Starting now cannot meet the deadline: end it instead of burning a slot (SPEC §2.5).
        this.#o.lifecycle.finish(task, pool, replicaExhausted(pool, task));
        continue;
      }
      const affinity =
        task.spec.kvHint === 'cold'
          ? undefined
          : this.#o.sessions.get(task.spec.tenant, task.spec.sessionId)?.lastReplicaId;
      // A task that failed on this member's only ready replica tries another member first.
      if (task.avoidReplicaId !== undefined && onlyAvoided(pool, task) && this.#retryOnSibling(pool, task))
        continue;
      const candidates = candidatesFor(pool, task);
      const replicaId = this.#placement.choose(candidates, {
        affinity,
        overloadRatio: OVERLOAD_RATIO,
        ...(this.#placement.readsPrefix === true && task.spec.workload !== 'embedding'
          ? { prefix: pool.prefixMatch(task.spec, candidates) }
          : {}),
      });
      const replica = replicaId === undefined ? undefined : pool.replica(replicaId);
      if (!replica) {
        if (this.#handToSibling(pool, task)) continue;
        if (this.#o.preemption === 'hard') this.#preemptFor(pool, task);
        if (task.spec.placement?.allow !== undefined && pool.loads().some(hasFreeSlot)) {
          held.add(task.spec.taskId);
          continue;
        }
        return;
      }
      pool.queue.takeNext(held.size > 0 ? skip : undefined);
      this.#bind(pool, task, replica);
    }
  }

  /**
   * A member that can start work now; for `task`: on a replica its placement allows, not the
   * replica it failed on.
   */
  #hasRoom(pool: PoolRuntime, task?: TaskRecord): boolean {
    return (
      !pool.paused &&
      pool
        .loads()
        .some(
          (r) =>
            r.inFlight < r.slotsTotal && r.id !== task?.avoidReplicaId && allows(task?.spec.placement, r.id),
        )
    );
  }

  /**
   * Late binding never gives a member work of a class its SLO breaker sheds (ORCH-3040), nor a
   * task its placement keeps off every replica of that member.
   */
  #takes(pool: PoolRuntime, task: TaskRecord): boolean {
    if (pool.sloBreaker.sheds(task.spec.priority)) return false;
    const placement = task.spec.placement;
    return placement?.allow === undefined || pool.replicaIds().some((id) => allows(placement, id));
  }

  /** `pool` is idle: take the next task of the sibling that is furthest from starting it. */
  #takeFromSibling(pool: PoolRuntime): boolean {
    if (!this.#hasRoom(pool)) return false;
    const waiting = (this.#o.siblings?.(pool) ?? [])
      .filter((s) => s.queue.size > 0 && !this.#hasRoom(s))
      .sort((a, b) => b.queue.size - a.queue.size);
    for (const from of waiting) {
      const next = from.queue.peekNext();
      const task = next && this.#o.table.get(next.id);
      if (
        task &&
        !task.terminal &&
        this.#takes(pool, task) &&
        this.#hasRoom(pool, task) &&
        this.#o.lifecycle.move(task, from, pool, 'head')
      )
        return true;
    }
    return false;
  }

  /** `task` cannot start on `pool` now: an idle sibling with nothing queued takes it and starts it. */
  #handToSibling(pool: PoolRuntime, task: TaskRecord): boolean {
    const to = (this.#o.siblings?.(pool) ?? []).find(
      (s) => s.queue.size === 0 && this.#hasRoom(s, task) && this.#takes(s, task),
    );
    if (!to || !this.#o.lifecycle.move(task, pool, to, 'head')) return false;
    this.pump(to);
    return true;
  }

  /**
   * A task that failed before its first token on `pool`'s only ready replica: another member
   * with a ready replica takes it, at the head of its queue if it has no free slot yet.
   */
  #retryOnSibling(pool: PoolRuntime, task: TaskRecord): boolean {
    if (this.#handToSibling(pool, task)) return true;
    const to = (this.#o.siblings?.(pool) ?? []).find(
      (s) => !s.paused && s.readyReplicas().length > 0 && this.#takes(s, task),
    );
    return to !== undefined && this.#o.lifecycle.move(task, pool, to, 'head');
  }

  /** A held member (reload, drain): its queued work goes to siblings as far as they have room. */
  #spill(pool: PoolRuntime): void {
    for (;;) {
      const next = pool.queue.peekNext();
      const task = next && this.#o.table.get(next.id);
      if (!task || task.terminal || !this.#handToSibling(pool, task)) return;
    }
  }

  /** Abort a running task's engine request, remembering why. */
  abort(task: TaskRecord, cause: AbortCause): void {
    task.abortCause ??= cause;
    task.abort.abort(new Error(cause));
  }

  /** Hard preemption: stop the decode of a lower-priority task on an interruptible replica. */
  #preemptFor(pool: PoolRuntime, urgent: TaskRecord): void {
    if (this.#preempting.has(pool.id)) return;
    // A strict-determinism task is never hard-preempted: its resumed stream would differ (SPEC §17).
    // A task placed on some replicas only may take a slot on those only.
    const running = [...pool.running.values()].filter((r) => allows(urgent.spec.placement, r.replicaId));
    const candidates = running.map((r) => ({
      ...r,
      // Chat, constrained output and tool calls cannot resume either: they count as strict.
      determinism: resumableDeterminism(this.#o.table.get(r.taskId)?.spec),
      interruptible: pool.replica(r.replicaId)?.props?.features.interruptibleDecode === true,
    }));
    const victim = this.#victims.choose(candidates, urgent.spec.priority);
    const task = victim && this.#o.table.get(victim.taskId);
    if (!task || task.terminal) return;
    this.#preempting.add(pool.id);
    this.#o.logger.info(
      {
        ...taskLogFields(task, pool),
        event: 'task.preempted',
        mode: 'hard',
        for_job_id: urgent.spec.taskId,
      },
      'task preempted (hard) for an urgent task',
    );
    this.abort(task, 'preempted');
  }

  #bind(pool: PoolRuntime, task: TaskRecord, replica: ReplicaView): void {
    const now = this.#o.clock.now();
    pool.inFlight.set(replica.id, (pool.inFlight.get(replica.id) ?? 0) + 1);
    pool.running.set(task.spec.taskId, {
      taskId: task.spec.taskId,
      replicaId: replica.id,
      priority: task.spec.priority,
      tenant: task.spec.tenant,
      cost: task.cost,
      startedAtMs: now,
      expectedTokens: Math.max(1, (task.spec.expectedTokens ?? task.spec.maxTokens) - task.tokensOut),
      // The record itself, read only when predicting: the token loop copies nothing.
      ...(task.tokensOut === 0 ? { stream: task } : {}),
    });
    // Warm only where the replica's engine still holds the session's or the prompt's KV: a
    // session's last replica that restarted since is cold.
    const generates = task.spec.workload !== 'embedding';
    const warm = generates && pool.kvWarm(replica, task.spec);
    if (generates) pool.recordDispatch(replica, task.spec);
    this.#o.lifecycle.dispatch(task, pool, replica.id, warm);
    const run = this.#run(pool, task, replica).finally(() => {
      this.#running.delete(run);
      pool.running.delete(task.spec.taskId);
      pool.inFlight.set(replica.id, Math.max(0, (pool.inFlight.get(replica.id) ?? 1) - 1));
      if (task.abortCause === 'preempted') this.#preempting.delete(pool.id);
      if (task.abortCause === 'preempted' && !task.terminal) this.#o.lifecycle.requeue(task, pool);
      const retry = this.#redispatch.get(task);
      if (retry) {
        this.#redispatch.delete(task);
        this.#o.lifecycle.redispatch(task, pool, retry);
      }
      this.pump(pool);
    });
    this.#running.add(run);
  }

  async #run(pool: PoolRuntime, task: TaskRecord, replica: ReplicaView): Promise<void> {
    const { clock, metrics, lifecycle } = this.#o;
    const { wallMs, idleMs } = pool.config.timeouts;
    const wall = setTimeout(() => this.abort(task, 'wall-timeout'), Math.max(1, wallMs - task.priorRunMs));
    const idle = setTimeout(() => this.abort(task, 'idle-timeout'), idleMs);
    const labels = {
      engine: pool.config.engine,
      engine_version: pool.engineVersion(),
      pool_id: pool.id,
      replica_id: replica.id,
    };
    const startedAt = clock.now();
    let firstAt: number | undefined;
    const tokensBefore = task.tokensOut;
    // tokens_out_total is counted in batches: a labelled counter update per token is measurable.
    let uncounted = 0;
    const countTokens = (): void => {
      if (uncounted > 0) metrics.inc('tokens_out_total', labels, uncounted);
      uncounted = 0;
    };
    try {
      if (task.spec.workload === 'embedding') {
        await this.#embed(pool, task, replica, labels);
        return;
      }
      // A resumed task continues from its prompt plus what it generated before preemption.
      const stream = replica.adapter.generate(
        generateRequestOf(task.spec, { text: task.text, tokensOut: task.tokensOut }),
        task.abort.signal,
      );
      for await (const ev of stream) {
        if (task.terminal) break;
        if (ev.kind === 'tokens') {
          idle.refresh();
          firstAt ??= clock.now();
          lifecycle.tokens(task, pool, ev);
          uncounted += ev.count;
          if (uncounted >= 32) countTokens();
          this.#enforceBudget(pool, task, startedAt);
          continue;
        }
        lifecycle.promptCounted(task, ev.tokensIn);
        countTokens();
        metrics.inc('tokens_in_total', labels, ev.tokensIn);
        const now = clock.now();
        const decodeMs = now - (task.firstTokenAtMs ?? now);
        pool.estimator.observe(now - startedAt, task.tokensOut, decodeMs);
        // Prefill costs only the prompt tokens the engine's cache did not hold.
        const prefilled = ev.tokensInUncached ?? ev.tokensIn;
        pool.predictor.observe({
          replicaId: replica.id,
          prefillTokens: prefilled,
          prefillMs: (firstAt ?? now) - startedAt,
          decodeTokens: Math.max(0, task.tokensOut - tokensBefore - 1),
          decodeMs: now - (firstAt ?? now),
        });
        pool.predictor.observeService(prefilled + (task.tokensOut - tokensBefore), now - startedAt);
        pool.recordOutcome(replica.id, 'ok');
        lifecycle.finish(task, pool, {
          kind: 'completed',
          slotId: ev.slotId,
          end: {
            tokens_out: task.tokensOut,
            decode_ms: decodeMs,
            tokens_in: task.tokensIn,
            stop_reason: ev.stopReason === 'tool_calls' ? 'stop' : ev.stopReason,
            finish_reason: finishReasonOf(ev.stopReason),
            ...(ev.toolCalls === undefined || ev.toolCalls.length === 0
              ? {}
              : { tool_calls: [...ev.toolCalls] }),
            ...(task.preemptions > 0 ? { preempted: true } : {}),
          },
        });
      }
      if (!task.terminal && task.abortCause !== 'preempted') {
        this.#failed(pool, task, replica, {
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
      // A hard-preempted task is not finished: it is requeued once its stream has closed.
      if (!task.terminal && task.abortCause !== 'preempted')
        this.#failed(pool, task, replica, failureOf(pool, task, err, this.#o.logger));
    } finally {
      countTokens();
      clearTimeout(wall);
      clearTimeout(idle);
    }
  }

  /**
   * A run ended in failure. Engine failures count against the replica (outlier ejection); one
   * that came before the first token is dispatched once more to another ready replica instead of
   * ending the task (SPEC §17 §5) — the client sees one stream, without the failed attempt.
   */
  #failed(pool: PoolRuntime, task: TaskRecord, replica: ReplicaView, failure: Failed): void {
    const cause = task.abortCause;
    const engineFault =
      (cause === undefined || cause === 'idle-timeout' || cause === 'host-lost') &&
      ENGINE_FAULTS.has(failure.error.code);
    if (engineFault) pool.recordOutcome(replica.id, 'failed');
    const elsewhere =
      pool.readyReplicas().some((r) => r.id !== replica.id) ||
      (this.#o.siblings?.(pool) ?? []).some((s) => !s.paused && s.readyReplicas().length > 0);
    if (
      engineFault &&
      elsewhere &&
      task.firstTokenAtMs === undefined &&
      task.redispatches === 0 &&
      task.deadlineAtMs > this.#o.clock.now()
    ) {
      this.#redispatch.set(task, failure.error);
      return;
    }
    this.#o.lifecycle.finish(task, pool, failure);
  }

  /** Stops the task at budget exhaustion: committed session usage plus this task so far. */
  #enforceBudget(pool: PoolRuntime, task: TaskRecord, startedAt: number): void {
    const b = pool.config.budgets;
    if (!hasSessionBudget(b)) return;
    const tokensIn = task.tokensIn || task.spec.promptTokens;
    const usage = this.#o.ledger.inFlight(task.spec.tenant, task.spec.sessionId, task.spec.taskId, {
      tokens: tokensIn + task.tokensOut,
      wallMs: task.priorRunMs + (this.#o.clock.now() - startedAt),
      cost: costOf(pool.config.prices, tokensIn, task.tokensOut),
    });
    const kind = exhausted(usage, b);
    if (kind !== undefined) this.abort(task, `budget-${kind}`);
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
    this.#o.lifecycle.promptCounted(task, r.tokensIn);
    this.#o.metrics.inc('tokens_in_total', labels, r.tokensIn);
    pool.estimator.observe(this.#o.clock.now() - started, 0, 0);
    pool.predictor.observeService(r.tokensIn, this.#o.clock.now() - started);
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
}

function resumableDeterminism(spec: TaskRecord['spec'] | undefined): 'strict' | 'best_effort' {
  return spec === undefined || !resumable(spec) ? 'strict' : spec.determinism;
}

/** Failures that are the replica's, not the request's: worth another replica, and counted. */
const ENGINE_FAULTS: ReadonlySet<string> = new Set([
  // The engine refused the request (overloaded): it never started, another replica may take it.
  'REPLICA_EXHAUSTED',
  'WORKER_RESET',
  'INTERNAL',
  'DECODE_TIMEOUT',
  'POOL_UNREADY',
  'POOL_UNAVAILABLE',
]);

/** True when the replica the task failed on is the only ready one of `pool`. */
function onlyAvoided(pool: PoolRuntime, task: TaskRecord): boolean {
  return pool
    .loads()
    .filter((r) => allows(task.spec.placement, r.id))
    .every((r) => r.id === task.avoidReplicaId);
}

/**
 * Ready replicas `task` may go to: those its placement allows, not back to the one it just
 * failed on while another is ready, the best scored.
 */
function candidatesFor(pool: PoolRuntime, task: TaskRecord): readonly ReplicaLoad[] {
  return constrainCandidates(pool.loads(), task.spec.placement, task.avoidReplicaId);
}
