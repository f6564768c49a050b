/**
 * Supervises the engine processes of one pool on this host (SPEC §5), whatever the engine: launch
 * with the device mask, wait for health, run a minimal decode and read properties before
 * declaring a replica Ready (ORCH-3002), keep checking the health of Ready replicas, mark a
 * replica Unready with the cause when it stops answering or exits, and restart a crashed replica
 * with exponential backoff and jitter. A replica whose engine version differs from the replica
 * set's is refused (SPEC §14: determinism holds only within one version).
 */
import type { ResolvedPool } from '../config/resolved-config.js';
import type { EngineAdapter, EngineHealth } from '../engines/adapter.js';
import type { Logger } from '../util/logger.js';
import type { CapacityGate, CapacityLease } from './capacity-planner.js';
import type { EngineLauncher } from './engine-launcher.js';
import { EngineProcess, describeExit } from './engine-process.js';
import { classifyFailure, type FailureKind } from './failure-class.js';
import { RestartPolicy } from './restart-policy.js';
import { freePort } from './free-port.js';
import type { HostGpuTelemetry, PoolSupervisor, ReplicaState, ReplicaView } from './replica.js';

/** What operators count: restarts, classified failures, the breaker's state. */
export type SupervisorEvent =
  | { readonly kind: 'restart'; readonly replicaId: string }
  | { readonly kind: 'failure'; readonly replicaId: string; readonly reason: FailureKind | 'preload' }
  | { readonly kind: 'breaker'; readonly replicaId: string; readonly open: boolean };

export interface EngineSupervisorOptions {
  readonly pool: ResolvedPool;
  readonly launcher: EngineLauncher;
  readonly logger: Logger;
  readonly onEvent?: (e: SupervisorEvent) => void;
  /** Checked before any process starts (headroom); a cause refuses every replica. */
  readonly preflight?: () => Promise<string | undefined>;
  /**
   * Judges the engine's own startup report once the self-test passed (llama.cpp: layers offloaded
   * to the GPU, `engines/llamacpp/offload-report.ts`): `lines` picks the report out of the output,
   * a cause refuses the replica without retrying (a rebuild or a config change must fix it).
   */
  readonly verifyOffload?:
    | {
        readonly lines: RegExp;
        verify(report: readonly string[], replicaId: string): string | undefined;
      }
    | undefined;
  /** Where engines' run files go (`<data_dir>/run`), so a later daemon can reap them after a crash. */
  readonly runDir?: string | undefined;
  /**
   * Reserves GPU memory before each engine start, across all pools of the host (capacity
   * planner); a refusal leaves the replica unready, retried with the restart backoff.
   */
  readonly capacity?: CapacityGate | undefined;
  /** This host's GPU telemetry, for pool health. */
  readonly gpuTelemetry?: (() => HostGpuTelemetry) | undefined;
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
  readonly policy: RestartPolicy;
  /** Slots per process after a VRAM OOM re-estimated capacity (undefined: as configured). */
  parallel: number | undefined;
  healthTimer: NodeJS.Timeout | undefined;
  /** Why the supervisor killed the engine (failed health checks), for the restart's cause. */
  killedFor?: string | undefined;
  /** Backoff between capacity refusals (no breaker: nothing crashed); reset once admitted. */
  capacityWait?: RestartPolicy | undefined;
}

/**
 * Failed health checks in a row (no answer in time, or not ready) after which a replica is made
 * unready — one slow answer on a loaded host is not a failure — and after which a live but
 * unhealthy engine is killed and restarted under the restart policy.
 */
const HEALTH_FAILURES_BEFORE_UNREADY = 2;
const HEALTH_FAILURES_BEFORE_RESTART = 5;

const PROBE_INTERVAL_MS = 50;

/** How an open breaker's cause begins (it schedules a restart, unlike other non-retrying causes). */
const BREAKER_CAUSE = 'circuit breaker open';

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
      policy: new RestartPolicy(opts.pool.launch.restart),
      parallel: undefined,
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
    for (const r of this.#replicas) this.#set(r, { kind: 'starting' });
    const refused = await this.#o
      .preflight?.()
      .catch((err: unknown) => `preflight failed: ${(err as Error).message}`);
    if (refused !== undefined) {
      for (const r of this.#replicas) this.#set(r, { kind: 'unready', cause: refused });
      return;
    }
    await Promise.all(this.#replicas.map((r) => this.#launch(r)));
  }

  /** The engine process of a replica (operators' diagnostics, failure tests). */
  processOf(replicaId: string): EngineProcess | undefined {
    return this.#replicas.find((r) => r.id === replicaId)?.process;
  }

  /**
   * Kills a replica's engine and restarts it under the restart policy and breaker (outlier
   * ejection: it keeps failing tasks while its health checks pass). The replica is unready at
   * once and comes back through its startup self-test. A replica that is not ready is already on
   * its way down or back: that restart serves. Resolves true once the replica is ready again,
   * false when it will not come back (stopped, refused).
   */
  restartReplica(replicaId: string, cause: string): Promise<boolean> {
    const r = this.#replicas.find((x) => x.id === replicaId);
    if (!r || this.#stopping) return Promise.resolve(false);
    const back = this.#whenBack(r);
    const proc = r.process;
    if (r.state.kind !== 'ready' || !proc || proc.exit || r.killedFor !== undefined) return back;
    r.killedFor = `restarted: ${cause}`;
    clearInterval(r.healthTimer);
    this.#o.logger.warn(
      { event: 'replica.restart_requested', pool_id: this.poolId, replica_id: r.id, cause },
      `${r.id}: killing and restarting the engine (${cause})`,
    );
    this.#set(r, { kind: 'unready', cause: r.killedFor, retrying: true });
    void proc.stop(500);
    return back;
  }

  /** True at the replica's next `ready`; false when it stops or is refused for good. */
  #whenBack(r: Replica): Promise<boolean> {
    return new Promise((resolve) => {
      const off = this.onChange((v) => {
        if (v.id !== r.id) return;
        const s = v.state;
        const final =
          s.kind === 'stopped' ||
          (s.kind === 'unready' && s.retrying !== true && !s.cause.startsWith(BREAKER_CAUSE));
        if (s.kind !== 'ready' && !final) return;
        off();
        resolve(s.kind === 'ready');
      });
    });
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
    const mask = this.#o.pool.replicaDevices[r.index] ?? this.#o.pool.devices;
    return {
      id: r.id,
      poolId: this.poolId,
      state: r.state,
      adapter: r.adapter,
      props: r.props,
      ...(mask === 'cpu'
        ? {}
        : { gpu: { devices: mask, pid: r.process?.exit ? undefined : r.process?.pid } }),
    };
  }

  gpuTelemetry(): readonly HostGpuTelemetry[] {
    return this.#o.gpuTelemetry ? [this.#o.gpuTelemetry()] : [];
  }

  /**
   * Capacity planning before an engine starts: the lease to hold while it runs (undefined
   * without a planner), or null when refused — the replica is then unready with the numbers and,
   * where memory may free, tried again after the restart policy's backoff.
   */
  async #reserve(r: Replica): Promise<CapacityLease | undefined | null> {
    const gate = this.#o.capacity;
    const mask = this.#o.pool.replicaDevices[r.index] ?? this.#o.pool.devices;
    if (!gate || mask === 'cpu') return undefined;
    const parallel = r.parallel ?? this.#o.pool.launch.parallel;
    const answer = await gate
      .admit({ poolId: this.poolId, replicaId: r.id, devices: mask, parallel })
      .catch((err: unknown) => ({
        ok: false as const,
        retry: true,
        cause: `capacity: ${(err as Error).message}`,
      }));
    if (answer.ok) {
      if (!this.#stopping) return answer.lease;
      answer.lease.release();
      return null;
    }
    if (this.#stopping) return null;
    this.#set(r, { kind: 'unready', cause: answer.cause, ...(answer.retry ? { retrying: true } : {}) });
    if (answer.retry) {
      r.capacityWait ??= new RestartPolicy({ ...this.#o.pool.launch.restart, maxFailures: Infinity });
      clearTimeout(r.restartTimer);
      r.restartTimer = setTimeout(() => void this.#launch(r), r.capacityWait.onFailure(Date.now()).delayMs);
      r.restartTimer.unref();
    }
    return null;
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
    // Admitted first: a replica waiting for memory keeps showing why (unready, retrying).
    const lease = await this.#reserve(r);
    if (lease === null) return;
    r.capacityWait = undefined;
    this.#set(r, { kind: 'starting' });
    const ports: number[] = [];
    while (ports.length < launcher.portCount) {
      const p = await freePort(pool.launch.host);
      if (!ports.includes(p)) ports.push(p);
    }
    const effective =
      r.parallel === undefined ? pool : { ...pool, launch: { ...pool.launch, parallel: r.parallel } };
    const cmd = launcher.command(r.index, ports, effective);
    const proc = new EngineProcess({
      binary: cmd.binary,
      args: cmd.args,
      env: cmd.env,
      logger: logger.child({ pool_id: pool.id, replica_id: r.id }),
      runDir: this.#o.runDir,
      label: r.id,
      retain: this.#o.verifyOffload?.lines,
    });
    r.process = proc;
    lease?.started(proc.pid);
    // Whatever ends the engine (failed preload, crash, stop) frees its memory.
    void proc.exited.then(() => lease?.release());
    await r.adapter.close();
    r.adapter = launcher.adapter(ports, effective);
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
    const outcome = await this.#preloadAndSelfTest(r, proc);
    if (outcome !== undefined) {
      await proc.stop(500);
      if (this.#stopping) return;
      if (!outcome.retry) {
        this.#set(r, { kind: 'unready', cause: outcome.cause });
        return;
      }
      this.#failed(r, proc, `preload failed: ${outcome.cause}`);
      return;
    }
    if (r.policy.open) this.#o.onEvent?.({ kind: 'breaker', replicaId: r.id, open: false });
    r.policy.onReady(Date.now());
    lease?.loaded();
    this.#set(r, { kind: 'ready' });
    this.#watchHealth(r, proc);
    void proc.exited.then(() => {
      if (this.#stopping || r.process !== proc) return;
      clearInterval(r.healthTimer);
      const why = r.killedFor;
      r.killedFor = undefined;
      this.#failed(r, proc, why ?? 'engine process ended', why === undefined ? undefined : 'exit');
    });
  }

  /**
   * An engine failed (exit or failed preload): classify it, re-estimate capacity after a GPU
   * OOM, and restart with backoff — or open the breaker when failures come too fast.
   */
  #failed(r: Replica, proc: EngineProcess, what: string, kind?: FailureKind): void {
    // An engine we killed for failing health checks died of our signal, not of memory.
    const classified = classifyFailure(proc.exit, proc.output());
    const failure = kind === undefined ? classified : { ...classified, kind };
    const exit = proc.exit ? describeExit(proc.exit) : 'stopped';
    const detail = failure.line ?? proc.lastError();
    this.#o.onEvent?.({ kind: 'failure', replicaId: r.id, reason: failure.kind });
    if (failure.kind === 'vram_oom') {
      const before = r.parallel ?? this.#o.pool.launch.parallel;
      r.parallel = Math.max(1, Math.floor(before / 2));
      this.#o.logger.warn(
        {
          event: 'replica.capacity_reestimated',
          replica_id: r.id,
          slots_before: before,
          slots_after: r.parallel,
        },
        `GPU out of memory on ${r.id}: restarting with ${r.parallel} slot(s) instead of ${before}`,
      );
    }
    const cause = `${what} (${failure.kind}): ${exit}${detail ? `: ${detail}` : ''}`;
    const decision = r.policy.onFailure(Date.now());
    if (decision.action === 'open') {
      this.#o.onEvent?.({ kind: 'breaker', replicaId: r.id, open: true });
      this.#set(r, {
        kind: 'unready',
        cause: `${BREAKER_CAUSE} after ${decision.failures} failures in ${this.#o.pool.launch.restart.windowMs} ms; next attempt in ${decision.delayMs} ms; last: ${cause}`,
      });
    } else {
      this.#set(r, { kind: 'unready', cause, retrying: true });
    }
    this.#scheduleRestart(r, decision.delayMs);
  }

  /** Returns undefined when the replica passed its startup self-test, else the cause. */
  async #preloadAndSelfTest(
    r: Replica,
    proc: EngineProcess,
  ): Promise<{ cause: string; retry: boolean } | undefined> {
    const cause = await this.#selfTestCause(r, proc);
    if (cause === undefined) {
      const refused = this.#o.verifyOffload?.verify(proc.retained(), r.id);
      return refused === undefined ? undefined : { cause: refused, retry: false };
    }
    // A version mismatch does not heal by restarting; everything else may (crash loops meet the breaker).
    return { cause, retry: !cause.startsWith('engine_version ') && cause !== 'stopping' };
  }

  async #selfTestCause(r: Replica, proc: EngineProcess): Promise<string | undefined> {
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
      // An engine that only embeds proves itself with one embedding instead of a decode.
      const declared = await r.adapter.properties(signal);
      if (declared.features.completions === false) {
        const problem = await embedSelfTest(r, signal);
        if (problem !== undefined) return problem;
        return await this.#finishSelfTest(r, signal);
      }
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
      const cancelProblem = await this.#cancelCheck(r, signal);
      if (cancelProblem !== undefined) return cancelProblem;
      return await this.#finishSelfTest(r, signal);
    } catch (err) {
      return exitCause() ?? `self-test failed: ${(err as Error).message}`;
    }
  }

  /** The self-test's last steps: a telemetry read, the properties, one engine version per set. */
  async #finishSelfTest(r: Replica, signal: AbortSignal): Promise<string | undefined> {
    // Telemetry read: the engine's metrics must be scrapeable before it takes work.
    await r.adapter.scrapeMetrics(signal);
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
  }

  /**
   * Cancel check: a stream aborted after its first token must free the engine slot (the property
   * every cancel and preemption relies on). Engines that report no slot state pass on the abort.
   */
  async #cancelCheck(r: Replica, signal: AbortSignal): Promise<string | undefined> {
    const ac = new AbortController();
    const onOuter = () => ac.abort(signal.reason);
    signal.addEventListener('abort', onOuter, { once: true });
    try {
      const stream = r.adapter.generate(
        {
          prompt: 'ok',
          maxTokens: 64,
          seed: 0,
          determinism: 'strict',
          samplerProfileVersion: 'v1',
          cachePrompt: false,
          ignoreEos: true,
        },
        ac.signal,
      );
      for await (const ev of stream) {
        if (ev.kind === 'tokens') {
          ac.abort(new Error('self-test cancel'));
          break;
        }
      }
    } catch (err) {
      if (!ac.signal.aborted) return `self-test cancel check failed: ${(err as Error).message}`;
    } finally {
      signal.removeEventListener('abort', onOuter);
    }
    for (let i = 0; i < 100; i++) {
      const p = await r.adapter.properties(signal);
      if (p.slotsFree === undefined || p.slotsFree >= p.slotsTotal) return undefined;
      await new Promise((res) => setTimeout(res, 20));
    }
    return 'self-test cancel check failed: the engine did not free the slot of an aborted request';
  }

  /**
   * Ready replicas keep being probed. One that fails HEALTH_FAILURES_BEFORE_UNREADY checks in a
   * row — no answer in time (a frozen process still accepts connections), an error status — or
   * reports loading goes Unready, so placement and admission route around it; after
   * HEALTH_FAILURES_BEFORE_RESTART failures in a row (loading aside) the engine is killed and
   * restarted under the restart policy and breaker.
   */
  #watchHealth(r: Replica, proc: EngineProcess): void {
    let probing = false;
    let failuresInRow = 0;
    const timeoutMs = this.#o.pool.launch.healthTimeoutMs;
    const judge = (h: EngineHealth): void => {
      if (this.#stopping || r.process !== proc || proc.exit || r.killedFor !== undefined) return;
      if (h.ready) {
        failuresInRow = 0;
        if (r.state.kind === 'unready') this.#set(r, { kind: 'ready' });
        return;
      }
      failuresInRow++;
      const what = h.loading
        ? 'engine reports loading'
        : h.live
          ? 'engine health check failed'
          : 'engine not answering';
      const cause = `${what}${h.detail ? ` (${h.detail})` : ''}`;
      // An engine that says it is loading is not ready, whatever the count.
      if (r.state.kind === 'ready' && (h.loading || failuresInRow >= HEALTH_FAILURES_BEFORE_UNREADY))
        this.#set(r, { kind: 'unready', cause, retrying: true });
      if (h.loading || failuresInRow < HEALTH_FAILURES_BEFORE_RESTART) return;
      r.killedFor = `killed after ${failuresInRow} failed health checks in a row; last: ${cause}`;
      clearInterval(r.healthTimer);
      this.#o.logger.warn(
        { event: 'replica.unhealthy_killed', pool_id: this.#o.pool.id, replica_id: r.id, cause },
        `${r.id}: ${r.killedFor}`,
      );
      void proc.stop(500);
    };
    r.healthTimer = setInterval(() => {
      if (probing || this.#stopping || r.process !== proc || proc.exit) return;
      probing = true;
      r.adapter
        .probe(AbortSignal.timeout(timeoutMs))
        .then(judge, () =>
          judge({ live: false, ready: false, loading: false, detail: `no answer within ${timeoutMs} ms` }),
        )
        .finally(() => (probing = false));
    }, this.#o.pool.launch.healthIntervalMs);
    r.healthTimer.unref();
  }

  #scheduleRestart(r: Replica, delay: number): void {
    if (this.#stopping) return;
    r.restarts++;
    this.#o.onEvent?.({ kind: 'restart', replicaId: r.id });
    this.#o.logger.warn(
      {
        event: 'replica.restart_scheduled',
        engine: this.#o.pool.engine,
        pool_id: this.#o.pool.id,
        replica_id: r.id,
        delay_ms: delay,
        restarts: r.restarts,
      },
      `restarting ${r.id} in ${delay} ms`,
    );
    clearTimeout(r.restartTimer);
    r.restartTimer = setTimeout(() => void this.#launch(r), delay);
    r.restartTimer.unref();
  }
}

/** One embedding through the real path: a vector with values, or the cause. */
async function embedSelfTest(r: Replica, signal: AbortSignal): Promise<string | undefined> {
  if (r.adapter.embed === undefined) return 'self-test: the engine only embeds, but its adapter cannot embed';
  const out = await r.adapter.embed(['ok'], signal);
  const first = out.vectors[0];
  return first !== undefined && first.length > 0 ? undefined : 'self-test embedding returned no vector';
}
