import type { ResolvedPool } from '../config/resolved-config.js';
import type { Clock, Priority } from '../domain/types.js';
import type { PoolSupervisor, ReplicaView } from '../pool/replica.js';
import { DrainEstimator } from '../scheduler/drain-estimator.js';
import type { ReplicaLoad } from '../scheduler/placement.js';
import type { PrefixMatch } from '../scheduler/policies/placement-policy.js';
import { PrefixIndex } from '../scheduler/prefix-index.js';
import {
  PROMPT_BLOCK_CHARS,
  prefixKeyOf,
  promptBlocksOf,
  type PromptSource,
} from '../scheduler/prompt-blocks.js';
import type { EngineAdapter } from '../engines/adapter.js';
import { PoolQueue, type QueueEntry, type SchedulingMode } from '../scheduler/pool-queue.js';
import {
  ServicePredictor,
  predictStartOnSlots,
  provisionalMsPerCost,
  type RunProgress,
  type Slot,
} from '../scheduler/service-predictor.js';
import { SloBreaker } from '../scheduler/slo-breaker.js';
import { SloWindow } from '../scheduler/slo-window.js';

/** A queued task as the pool queue sees it. */
export interface QueuedTask extends QueueEntry {
  readonly priority: Priority;
}

export interface PoolSchedulingOptions {
  readonly weights: Readonly<Record<Priority, number>>;
  readonly tenantWeight: (tenant: string) => number;
  readonly mode: SchedulingMode;
  readonly deadlineSlackTokens: number;
  readonly clock: Clock;
}

/** A task holding a slot, as predictions see it. */
export interface RunningTask {
  readonly taskId: string;
  readonly replicaId: string;
  readonly priority: Priority;
  readonly tenant: string;
  readonly cost: number;
  readonly startedAtMs: number;
  /** Output tokens this run is expected to stream (`expected_tokens`, else `max_tokens`). */
  readonly expectedTokens?: number;
  /**
   * The task's live stream counters, read when predicting (absent for a resumed run, whose first
   * token was an earlier run's): its pace before the replica completed anything.
   */
  readonly stream?: { readonly firstTokenAtMs: number | undefined; readonly tokensOut: number };
}

function progressOf(t: RunningTask): RunProgress[] {
  if (t.stream === undefined || t.expectedTokens === undefined) return [];
  return [
    {
      startedAtMs: t.startedAtMs,
      cost: t.cost,
      expectedTokens: t.expectedTokens,
      firstTokenAtMs: t.stream.firstTokenAtMs,
      tokens: t.stream.tokensOut,
    },
  ];
}

/** Readiness of a pool as admission sees it (SPEC §2.1 step 3). */
export type PoolAvailability = 'ready' | 'unready' | 'unavailable';

/** Everything the orchestrator keeps per pool: its queue, its replicas and what it learned. */
/** The pool's last drain or reload, as health reports it. */
export interface PoolLifecycle {
  readonly operation: 'drain' | 'reload' | 'rollback';
  state: 'in_progress' | 'succeeded' | 'rolled_back' | 'failed';
  readonly modelRef?: string;
  readonly previousModelRef?: string;
  cause?: string;
}

export class PoolRuntime {
  /** Replaced by a reload (new model path and digest). */
  config: ResolvedPool;
  readonly queue: PoolQueue<QueuedTask>;
  /** Replaced by a reload. */
  supervisor: PoolSupervisor;
  /** Dispatch is held (drain, reload); queued tasks wait. */
  paused = false;
  /** Drained: new work is refused. */
  draining = false;
  /** New work is refused while a reload swaps the engines. */
  reloading = false;
  lifecycle: PoolLifecycle | undefined;
  /** The model config before the last successful reload (for rollback). */
  previousModel: ResolvedPool['model'] | undefined;
  readonly estimator = new DrainEstimator({ alpha: 0.2, initialServiceMs: 1000 });
  readonly predictor = new ServicePredictor();
  /** Rolling SLO attainment of finished tasks, per priority (samples stamped by the clock). */
  readonly slo: SloWindow;
  /** Sheds batch admissions while the interactive SLO is violated (ORCH-3040). */
  readonly sloBreaker: SloBreaker;
  /** Tasks running per replica id (our own accounting; the engine's slot state is a cross-check). */
  readonly inFlight = new Map<string, number>();
  /** Tasks holding a slot, by task id. */
  readonly running = new Map<string, RunningTask>();
  readonly #clock: Clock;
  readonly #weights: Readonly<Record<Priority, number>>;
  readonly #failuresInRow = new Map<string, number>();
  readonly #ejectedUntil = new Map<string, number>();
  /** Replicas whose engine restart (after ejection) is under way. */
  readonly #restarting = new Set<string>();
  /** Replicas whose tokenizer timed out or failed, until when they are asked last. */
  readonly #tokenizerSuspects = new Map<string, number>();
  /**
   * What each replica's KV cache is estimated to hold, with the engine (adapter) it was built
   * for: a replica whose engine was replaced (restart, reload) starts with an empty cache.
   */
  readonly #prefix = new Map<string, { readonly engine: EngineAdapter; readonly index: PrefixIndex }>();
  /** Prompt characters per engine token, measured at dispatch (admission counted the tokens). */
  #charsPerToken = DEFAULT_CHARS_PER_TOKEN;
  /** The engines' own KV usage and busy slots, as last observed, by replica id. */
  readonly #engineState = new Map<
    string,
    { kvUsage?: number; kvAtMs?: number; busy?: number; busyAtMs?: number }
  >();

  constructor(config: ResolvedPool, supervisor: PoolSupervisor, o: PoolSchedulingOptions) {
    this.config = config;
    this.supervisor = supervisor;
    this.#clock = o.clock;
    this.#weights = o.weights;
    this.slo = new SloWindow(256, o.clock);
    this.sloBreaker = new SloBreaker(config.sloBreaker, o.clock.now());
    this.queue = new PoolQueue<QueuedTask>({
      capacity: config.queue.capacity,
      priorityCapacity: config.queue.priorityCapacity,
      fullPolicy: config.queue.fullPolicy,
      weights: o.weights,
      tenantWeight: o.tenantWeight,
      mode: o.mode,
      deadlineSlackTokens: o.deadlineSlackTokens,
      // ETA-aware eviction: a task that cannot finish by its deadline even if started now goes first.
      doomed: (e) => this.cannotMeet(e.cost, e.deadlineAtMs),
    });
  }

  weightOf(p: Priority): number {
    return this.#weights[p];
  }

  /** True when a task of `cost` tokens could not finish by `deadlineAtMs` even if started now. */
  cannotMeet(cost: number, deadlineAtMs: number): boolean {
    const ms = this.predictor.serviceMsForCost(cost);
    return ms !== undefined && this.#clock.now() + ms > deadlineAtMs;
  }

  get id(): string {
    return this.config.id;
  }

  readyReplicas(): ReplicaView[] {
    return this.supervisor.replicas().filter((r) => r.state.kind === 'ready');
  }

  availability(): PoolAvailability {
    const replicas = this.supervisor.replicas();
    if (replicas.some((r) => r.state.kind === 'ready')) return 'ready';
    const coming = replicas.some(
      (r) =>
        r.state.kind === 'starting' ||
        r.state.kind === 'preloading' ||
        r.state.kind === 'self-test' ||
        (r.state.kind === 'unready' && r.state.retrying === true),
    );
    return coming ? 'unready' : 'unavailable';
  }

  /** Slots per replica: what the engine reported at self-test, else the configured `parallel`. */
  slotsOf(r: ReplicaView): number {
    return r.props?.slotsTotal ?? this.config.launch.parallel;
  }

  readySlots(): number {
    return this.readyReplicas().reduce((n, r) => n + this.slotsOf(r), 0);
  }

  freeSlots(): number {
    return this.loads().reduce((n, r) => n + Math.max(0, r.slotsTotal - r.inFlight), 0);
  }

  /**
   * Ready replicas as placement sees them. A replica ejected for failing task after task is left
   * out while another ready replica can take the work (outlier ejection, SPEC §17 §5).
   */
  loads(): ReplicaLoad[] {
    const ready = this.readyReplicas();
    const now = this.#clock.now();
    const healthy = ready.filter((r) => (this.#ejectedUntil.get(r.id) ?? 0) <= now);
    return (healthy.length > 0 ? healthy : ready).map((r) => {
      const seen = this.#engineState.get(r.id);
      const kvFresh = now - (seen?.kvAtMs ?? -Infinity) <= KV_STATE_TTL_MS;
      const busyFresh = now - (seen?.busyAtMs ?? -Infinity) <= BUSY_STATE_TTL_MS;
      return {
        id: r.id,
        slotsTotal: this.slotsOf(r),
        inFlight: this.inFlight.get(r.id) ?? 0,
        topologyCost: this.config.topologyCost[replicaIndex(r.id)] ?? 0,
        ...(kvFresh && seen?.kvUsage !== undefined ? { kvUsage: seen.kvUsage } : {}),
        ...(busyFresh && seen?.busy !== undefined ? { engineBusy: seen.busy } : {}),
      };
    });
  }

  /** The engine's own state of a replica (KV usage 0..1, busy slots), from a scrape or probe. */
  observeEngine(replicaId: string, state: { readonly kvUsage?: number; readonly busy?: number }): void {
    const now = this.#clock.now();
    const seen = { ...this.#engineState.get(replicaId) };
    if (state.kvUsage !== undefined) Object.assign(seen, { kvUsage: state.kvUsage, kvAtMs: now });
    if (state.busy !== undefined) Object.assign(seen, { busy: state.busy, busyAtMs: now });
    this.#engineState.set(replicaId, seen);
  }

  /**
   * The prefix index of a replica, emptied when its engine is not the one the index was built
   * for, and sized to the replica's KV capacity: its slots times its context, in characters at
   * the measured characters per token.
   */
  prefixIndexOf(r: ReplicaView): PrefixIndex {
    const capacity = Math.ceil(
      ((r.props?.ctx ?? this.config.ctx) * this.slotsOf(r) * this.#charsPerToken) / PROMPT_BLOCK_CHARS,
    );
    let entry = this.#prefix.get(r.id);
    if (entry === undefined || entry.engine !== r.adapter) {
      entry = { engine: r.adapter, index: new PrefixIndex(capacity) };
      this.#prefix.set(r.id, entry);
    } else if (entry.index.capacity !== capacity) entry.index.resize(capacity);
    return entry.index;
  }

  /** Where the task's prompt is estimated to be cached, over `candidates`. */
  prefixMatch(task: PromptSource & SessionRef, candidates: readonly ReplicaLoad[]): PrefixMatch {
    const blocks = promptBlocksOf(task);
    const { hashes } = blocks;
    const matched = new Map<string, number>();
    const sessionOn = new Set<string>();
    const key = sessionKey(task);
    for (const c of candidates) {
      const r = this.replica(c.id);
      if (!r) continue;
      const index = this.prefixIndexOf(r);
      const n = index.match(hashes);
      if (n > 0) matched.set(c.id, n);
      if (index.holdsSession(key)) sessionOn.add(c.id);
    }
    return {
      blocks: hashes.length,
      blockChars: PROMPT_BLOCK_CHARS,
      matched,
      sessionOn,
      key: prefixKeyOf(blocks),
    };
  }

  /**
   * Whether `replica` still holds the task's KV: its session's, or a prefix of its prompt, since
   * its engine last started. Called before {@link recordDispatch}.
   */
  kvWarm(
    replica: ReplicaView,
    task: PromptSource & SessionRef & { readonly kvHint?: string | undefined },
  ): boolean {
    if (task.kvHint === 'cold') return false;
    const index = this.prefixIndexOf(replica);
    return index.holdsSession(sessionKey(task)) || index.match(promptBlocksOf(task).hashes) > 0;
  }

  /** Whether replica `replicaId` is ready and {@link kvWarm} for the task (or session). */
  kvWarmOn(
    replicaId: string | undefined,
    task: PromptSource & SessionRef & { readonly kvHint?: string | undefined },
  ): boolean {
    const r = replicaId === undefined ? undefined : this.replica(replicaId);
    return r?.state.kind === 'ready' && this.kvWarm(r, task);
  }

  /** A task was bound to `replica`: its prompt's KV (and its session's) is there now. */
  recordDispatch(
    replica: ReplicaView,
    task: PromptSource &
      SessionRef & {
        readonly promptTokens: number;
        readonly promptTokensBounded?: boolean | undefined;
        readonly kvHint?: string | undefined;
      },
  ): void {
    const blocks = promptBlocksOf(task);
    // A bound (bytes, not tokens) would read as about one character per token: not learned from.
    if (task.promptTokens > 0 && blocks.chars > 0 && task.promptTokensBounded !== true) {
      const ratio = blocks.chars / task.promptTokens;
      this.#charsPerToken += CHARS_PER_TOKEN_ALPHA * (ratio - this.#charsPerToken);
    }
    // A cold task asks the engine not to keep its prompt (`cache_prompt: false`).
    if (task.kvHint === 'cold') return;
    this.prefixIndexOf(replica).record(blocks.hashes, sessionKey(task));
  }

  /** The session's KV is erased or its session gone: no replica holds it any more. */
  forgetSession(task: SessionRef): void {
    for (const { index } of this.#prefix.values()) index.forgetSession(sessionKey(task));
  }

  /**
   * How a task on `replicaId` ended, as far as the replica is to blame: `ok` for a completion,
   * `failed` for an engine failure. After EJECT_AFTER failures in a row the replica is ejected
   * for EJECT_MS, so a replica that fails fast does not attract the work its free slots invite,
   * and its engine is restarted (a replica failing every task while its health checks pass would
   * otherwise stay broken); once it is back through its self-test the ejection ends.
   */
  recordOutcome(replicaId: string, outcome: 'ok' | 'failed'): void {
    if (outcome === 'ok') {
      this.#failuresInRow.delete(replicaId);
      return;
    }
    const n = (this.#failuresInRow.get(replicaId) ?? 0) + 1;
    this.#failuresInRow.set(replicaId, n);
    if (n >= EJECT_AFTER) {
      this.#ejectedUntil.set(replicaId, this.#clock.now() + EJECT_MS);
      this.#failuresInRow.delete(replicaId);
      this.#restart(replicaId, `ejected after ${n} failed tasks in a row`);
    }
  }

  /** One restart per replica at a time: failures of tasks still running on it add none. */
  #restart(replicaId: string, cause: string): void {
    if (this.#restarting.has(replicaId)) return;
    this.#restarting.add(replicaId);
    this.supervisor
      .restartReplica(replicaId, cause)
      .then(
        (back) => {
          if (!back) return;
          this.#ejectedUntil.delete(replicaId);
          this.#failuresInRow.delete(replicaId);
        },
        () => undefined,
      )
      .finally(() => this.#restarting.delete(replicaId));
  }

  /** Ready replicas currently ejected (health and logs). */
  ejected(): string[] {
    const now = this.#clock.now();
    return [...this.#ejectedUntil].filter(([, until]) => until > now).map(([id]) => id);
  }

  /** True when the replicas are engine simulators, not real engines. */
  get simulated(): boolean {
    return this.supervisor.simulated === true;
  }

  #props() {
    return (this.readyReplicas().find((r) => r.props) ?? this.supervisor.replicas().find((r) => r.props))
      ?.props;
  }

  /** The served model's digest: configured, else what the replicas reported. */
  modelDigest(): string | undefined {
    return this.config.model.digest ?? this.#props()?.modelDigest;
  }

  continuousBatching(): boolean {
    return this.#props()?.features.continuousBatching ?? this.config.launch.contBatching;
  }

  /** Whether the pool's engine generates (false for a pooling model that only embeds). */
  servesCompletions(): boolean {
    const props = this.readyReplicas().find((r) => r.props)?.props;
    return props?.features.completions !== false;
  }

  /** Whether the pool's engine produces embeddings (from the replicas' self-test properties). */
  servesEmbeddings(): boolean {
    const props = this.readyReplicas().find((r) => r.props)?.props;
    return (
      props?.features.embeddings === true && this.readyReplicas().some((r) => r.adapter.embed !== undefined)
    );
  }

  /** Engine version of the pool's replicas (they form one replica set). */
  engineVersion(): string {
    // Ready replicas define the set; a refused replica may report another version.
    for (const r of this.readyReplicas()) if (r.props) return r.props.engineVersion;
    for (const r of this.supervisor.replicas()) if (r.props) return r.props.engineVersion;
    return 'unknown';
  }

  /** Ready replicas in the order admission asks their tokenizer: healthy and least loaded first. */
  tokenizerReplicas(): ReplicaView[] {
    const now = this.#clock.now();
    const suspect = (r: ReplicaView) => (this.#tokenizerSuspects.get(r.id) ?? 0) > now;
    const load = (r: ReplicaView) => (this.inFlight.get(r.id) ?? 0) / Math.max(1, this.slotsOf(r));
    return this.readyReplicas().sort(
      (a, b) => Number(suspect(a)) - Number(suspect(b)) || load(a) - load(b) || (a.id < b.id ? -1 : 1),
    );
  }

  tokenizerFailed(replicaId: string): void {
    this.#tokenizerSuspects.set(replicaId, this.#clock.now() + TOKENIZER_SUSPECT_MS);
  }

  tokenizerAnswered(replicaId: string): void {
    this.#tokenizerSuspects.delete(replicaId);
  }

  /** Every replica's id, ready or not. */
  replicaIds(): string[] {
    return this.supervisor.replicas().map((r) => r.id);
  }

  replica(id: string): ReplicaView | undefined {
    return this.supervisor.replicas().find((r) => r.id === id);
  }

  /** Wait before a queue place frees, from the measured drain rate (SPEC §2.6). */
  backoffMs(): number {
    return this.estimator.backoffMs(this.readySlots());
  }

  /**
   * Expected wait before a task with `ahead` tasks in front of it gets a slot: list scheduling
   * of the queue ahead on the replicas' slots (SPEC §3.4), each replica at the pace learned from
   * its own completions (the others' mean until it has one). A pace is never taken faster than
   * what the replica's running tasks have already taken: they have not finished yet. Before any
   * completion, the drain estimate's prior service time, stretched the same way.
   */
  predictStartMs(ahead: number, meanCostAhead?: number): number {
    const now = this.#clock.now();
    const meanCost = Math.max(
      1,
      meanCostAhead ?? (this.queue.size > 0 ? this.queue.totalCost / this.queue.size : 1),
    );
    const runningOn = new Map<string, RunningTask[]>();
    for (const t of this.running.values()) {
      const on = runningOn.get(t.replicaId);
      if (on) on.push(t);
      else runningOn.set(t.replicaId, [t]);
    }
    const loads = this.loads();
    // A free slot for this task now: nothing to simulate (the common case on a pool with room).
    let free = 0;
    for (const r of loads) free += Math.max(0, r.slotsTotal - (runningOn.get(r.id)?.length ?? 0));
    if (ahead < free) return 0;
    // Replicas with no completion yet: the pace their running tasks are streaming at.
    const provisional = new Map<string, number>();
    for (const [id, running] of runningOn) {
      if (this.predictor.measured(id)) continue;
      const pace = provisionalMsPerCost(running.flatMap(progressOf), now);
      if (pace !== undefined) provisional.set(id, pace);
    }
    const slots: Slot[] = [];
    for (const r of loads) {
      const running = runningOn.get(r.id) ?? [];
      const learned = this.predictor.msPerCost(r.id, provisional);
      // Learned: a pace per cost token. Before any completion: the prior, per task whatever its cost.
      let per = learned ?? this.estimator.serviceMs;
      for (const t of running)
        per = Math.max(per, (now - t.startedAtMs) / (learned === undefined ? 1 : Math.max(1, t.cost)));
      const msPerCost = learned === undefined ? per / meanCost : per;
      for (const t of running) {
        const total = learned === undefined ? per : per * t.cost;
        slots.push({ readyInMs: Math.max(0, t.startedAtMs + total - now), msPerCost });
      }
      for (let k = running.length; k < r.slotsTotal; k++) slots.push({ readyInMs: 0, msPerCost });
    }
    return predictStartOnSlots(ahead, slots, meanCost, this.predictor.overheadMs);
  }

  /** Expected run time of a task once started (prefill of uncached prompt + decode). */
  predictServiceMs(promptTokens: number, outputTokens: number): number | undefined {
    return (
      this.predictor.serviceMs(promptTokens, outputTokens) ??
      this.predictor.serviceMsForCost(promptTokens + outputTokens) ??
      this.estimator.predictDecodeMs(outputTokens)
    );
  }
}

/** A session as the prefix index names it. */
export interface SessionRef {
  readonly tenant: string;
  readonly sessionId: string;
}

const sessionKey = (t: SessionRef): string => `${t.tenant}\u0000${t.sessionId}`;

/** Characters per token before any was measured: English text under current BPE tokenizers. */
const DEFAULT_CHARS_PER_TOKEN = 4;
const CHARS_PER_TOKEN_ALPHA = 0.1;
/**
 * Engine state older than this is not used for placement: KV usage changes slowly (a Prometheus
 * scrape period and then some), busy slots change with every request.
 */
const KV_STATE_TTL_MS = 30_000;
const BUSY_STATE_TTL_MS = 2_000;

/** Engine failures in a row after which a replica is ejected, and for how long. */
const EJECT_AFTER = 3;
const EJECT_MS = 30_000;

/** How long a replica whose tokenizer failed is asked last. */
const TOKENIZER_SUSPECT_MS = 30_000;

/** `<pool>-r<index>` → index. */
function replicaIndex(id: string): number {
  const m = /-r(\d+)$/.exec(id);
  return m ? Number(m[1]) : 0;
}
