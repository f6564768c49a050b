/**
 * The plugin host (SPEC §10): loads the configured plugins, builds each hook's snapshot, calls
 * the plugins in configuration order and turns their decisions into the orchestrator's terms.
 * Whatever goes wrong with a plugin — overrun, trap, malformed decision — the built-in policy
 * decides that call (admission: accept unchanged), with one logged reason and a counted fallback.
 */
import { Ajv } from 'ajv';
import type { TaskPlacement } from '../domain/task.js';
import type { Engine, Priority } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import { ERROR_CODES } from '../errors/codes.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import type { PluginHook, ResolvedPlugin } from './plugin-config.js';
import {
  ABI_VERSION,
  type ArtifactSource,
  describeErrors,
  loadPlugin,
  pluginContract,
  PluginLoadError,
  type PluginTrust,
  trustProblem,
} from './plugin-loader.js';
import { type FallbackReason, PluginRuntime, type PluginState } from './plugin-runtime.js';
import { type PluginToolProxy, PluginTools, type ToolRequest, toolGrantProblem } from './plugin-tools.js';

/** The wait a plugin's 429 refusal names when its decision gives no `retry_after_ms`. */
const DEFAULT_REFUSAL_RETRY_MS = 1_000;

/** What admission asks the plugins about (step 5b of `admit()`). */
export interface AdmissionQuery {
  readonly nowMs: number;
  readonly tenant: string;
  readonly task: {
    readonly taskId: string;
    readonly sessionId: string;
    readonly workload: string;
    readonly modelRef: string;
    readonly engine: string;
    readonly priority: Priority;
    readonly promptTokens: number;
    readonly maxTokens: number;
    readonly expectedTokens: number | undefined;
    readonly deadlineMs: number;
  };
  readonly pool: {
    readonly id: string;
    readonly engine: Engine;
    readonly queueDepth: number;
    readonly queueCapacity: number;
  };
}

/** One replica of the task's replica set, as the placement hook sees it. */
export interface PlacementCandidate {
  readonly id: string;
  readonly poolId: string;
  /** `local`, or the pool-managerd node. */
  readonly host: string;
  readonly ready: boolean;
  readonly slotsTotal: number;
  readonly inFlight: number;
  readonly queueDepth: number;
  /** GPUs as configured (index or UUID), as strings; empty for CPU replicas. */
  readonly devices: readonly string[];
  readonly topologyCost: number;
  /** The task's session ran its last turn here. */
  readonly session: boolean;
}

/** What admission asks the placement plugins about, once per admitted task. */
export interface PlacementQuery {
  readonly nowMs: number;
  readonly tenant: string;
  readonly task: AdmissionQuery['task'];
  /** Every replica of the replica set, in configuration order. */
  readonly replicas: readonly PlacementCandidate[];
}

/** What the plugins changed about an admitted submission (nothing: the built-in policy). */
export interface AdmissionAdjustment {
  readonly priority?: Priority;
  /** Scales the task's share in its queue (its WFQ cost is divided by it). */
  readonly weight?: number;
}

/** The admission step as the orchestrator sees it. */
export interface AdmissionPolicy {
  /** Resolves to the adjustment (possibly none) or rejects with the plugin's typed refusal. */
  admission(q: AdmissionQuery): Promise<AdmissionAdjustment>;
  /** A submission was admitted: its tokens count towards the tenant's recent usage. */
  admitted(tenant: string, tokens: number, atMs: number): void;
  /** Whether any plugin serves `placement` (admission skips building its snapshot otherwise). */
  readonly placesTasks?: boolean;
  /**
   * The first placement plugin's decision that is not `default`, or undefined: the built-in
   * placement. A failing plugin falls back (undefined) like at admission.
   */
  placement?(q: PlacementQuery): Promise<TaskPlacement | undefined>;
}

/** One entry of `GET /v1/plugins`. */
export interface PluginView {
  readonly id: string;
  readonly version: string;
  readonly abi: number;
  readonly hooks: readonly string[];
  readonly state: PluginState;
  readonly sha256: string;
  /** The artifact the active version was loaded from (plugins loaded by digest). */
  readonly artifact?: string;
  /** When the active version was loaded (start or last reload), ISO 8601. */
  readonly loaded_at: string;
  readonly budget_ms: number;
  readonly memory_max_bytes: number;
  readonly counters: {
    readonly calls: number;
    readonly ok: number;
    readonly fallbacks: number;
    readonly skipped: number;
    readonly timeouts: number;
    readonly traps: number;
    readonly malformed: number;
    readonly busy: number;
    readonly consecutive_failures: number;
  };
}

type Decision =
  | { decision: 'accept' }
  | {
      decision: 'refuse';
      code: 'ADMISSION_REJECT' | 'FORBIDDEN' | 'INVALID_PARAMS' | 'DEADLINE_UNMET' | 'POOL_UNAVAILABLE';
      message: string;
      retry_after_ms?: number;
    }
  | { decision: 'adjust'; priority?: Priority; weight?: number };

type PlacementDecision =
  { decision: 'default' } | { decision: 'place'; allow?: string[]; scores?: Record<string, number> };

const ajv = new Ajv({ allErrors: true, strict: false });
const validateDecision = ajv.compile<Decision>(pluginContract('admission-decision.schema.json'));
const validatePlacement = ajv.compile<PlacementDecision>(pluginContract('placement-decision.schema.json'));

/** The window of a tenant's recent admissions passed in snapshots. */
const WINDOW_MS = 60_000;

class TenantWindow {
  readonly #entries = new Map<string, { atMs: number; tokens: number }[]>();
  add(tenant: string, tokens: number, atMs: number): void {
    let list = this.#entries.get(tenant);
    if (!list) this.#entries.set(tenant, (list = []));
    list.push({ atMs, tokens });
  }
  usage(tenant: string, nowMs: number): { tokens: number; tasks: number } {
    const list = this.#entries.get(tenant);
    if (!list) return { tokens: 0, tasks: 0 };
    let drop = 0;
    while (drop < list.length && list[drop]!.atMs <= nowMs - WINDOW_MS) drop += 1;
    if (drop > 0) list.splice(0, drop);
    if (list.length === 0) this.#entries.delete(tenant);
    let tokens = 0;
    for (const e of list) if (e.atMs <= nowMs) tokens += e.tokens;
    return { tokens, tasks: list.length };
  }
}

export interface PluginHostOptions {
  readonly plugins: readonly ResolvedPlugin[];
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  /** The catalog's trust policy; absent: unsigned modules load (permissive, no warning). */
  readonly trust?: PluginTrust;
  /** The artifact registry, for plugins loaded by digest (`plugins[].artifact`). */
  readonly artifacts?: ArtifactSource;
  /** The tool proxy that runs the tool requests of plugins granted tools (`plugins[].tools`). */
  readonly tools?: PluginToolProxy;
  /** The orchestrator's clock (Unix epoch ms) for tool results' `at_ms`; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * What a reload may change: the digest pin moves to `sha256`, and a plugin loaded by digest from
 * the artifact registry moves to the artifact `artifact` (same tenant), when given.
 */
export interface PluginReloadRequest {
  readonly sha256?: string;
  readonly artifact?: string;
}

export class PluginHost implements AdmissionPolicy {
  readonly #o: PluginHostOptions;
  /** The active version of each plugin, in call order; an entry is replaced whole by a reload. */
  readonly #runtimes: PluginRuntime[];
  /** Each plugin's configuration as the last successful load saw it (a reload may move the pin). */
  readonly #configs: ResolvedPlugin[];
  /** Reloads run one at a time, so two cannot both retire the same version. */
  #reloads: Promise<unknown> = Promise.resolve();
  /** Replaced versions still finishing their calls; close() waits for them. */
  readonly #retiring = new Set<Promise<unknown>>();
  readonly #window = new TenantWindow();
  /** Tool runners and results by plugin id: they outlive reloads (a reload keeps the grant). */
  readonly #tools = new Map<string, PluginTools>();

  private constructor(o: PluginHostOptions, runtimes: PluginRuntime[]) {
    this.#o = o;
    this.#runtimes = runtimes;
    this.#configs = runtimes.map((r) => r.plugin.config);
    for (const r of runtimes) this.#watch(r);
    const proxy = o.tools;
    for (const cfg of this.#configs)
      if (cfg.tools !== undefined && proxy !== undefined)
        this.#tools.set(
          cfg.id,
          new PluginTools({
            pluginId: cfg.id,
            grant: cfg.tools,
            proxy,
            logger: o.logger,
            now: o.now ?? (() => Date.now()),
          }),
        );
  }

  /** The `tools` member of a snapshot for plugin `id`: present only for a plugin granted tools. */
  #toolResults(id: string, nowMs: number): { tools?: Record<string, unknown> } {
    const t = this.#tools.get(id);
    return t === undefined ? {} : { tools: t.results(nowMs) };
  }

  #watch(r: PluginRuntime): void {
    const o = this.#o;
    o.metrics.set('plugin_quarantined', { plugin: r.id }, 0);
    r.onState = (state, why) => {
      if (state === 'quarantined') o.metrics.set('plugin_quarantined', { plugin: r.id }, 1);
      o.logger.error(
        { event: `plugin.${state}`, plugin: r.id, plugin_version: r.version },
        `plugin '${r.id}' ${state}: ${why}`,
      );
    };
  }

  /** Loads and starts every configured plugin; throws {@link PluginLoadError} naming the first refused one. */
  static async load(o: PluginHostOptions): Promise<PluginHost> {
    const granted = o.plugins.findIndex((p) => p.tools !== undefined);
    if (granted >= 0 && o.tools === undefined)
      throw new PluginLoadError(`plugins[${granted}].tools: no tool proxy runs in this process`);
    const runtimes: PluginRuntime[] = [];
    try {
      for (const [i, cfg] of o.plugins.entries()) runtimes.push(await PluginHost.#start(o, cfg, i));
    } catch (err) {
      await Promise.all(runtimes.map((r) => r.close()));
      throw err;
    }
    return new PluginHost(o, runtimes);
  }

  /**
   * Reloads one plugin from its configured path with every load check (pin, trust, manifest,
   * memory cap, params) and swaps it in atomically: decisions from now on go to the new version,
   * calls already handed to the old one finish there, then its worker is closed. A reload lifts a
   * quarantine (the new version starts with fresh counters). On a refusal the old version stays
   * active and the {@link OrchError} names the cause: NOT_FOUND (no such plugin), CONFLICT (the
   * digest pin, or a module that does not load), UNTRUSTED_ARTIFACT (the trust policy).
   */
  reload(id: string, req: PluginReloadRequest = {}): Promise<PluginView> {
    const run = this.#reloads.then(() => this.#reload(id, req));
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  async #reload(id: string, req: PluginReloadRequest): Promise<PluginView> {
    const i = this.#runtimes.findIndex((r) => r.id === id);
    const old = this.#runtimes[i];
    const cfg = this.#configs[i];
    if (old === undefined || cfg === undefined)
      throw new OrchError('NOT_FOUND', `no plugin '${id}' is configured`);
    const source = cfg.source;
    if (req.artifact !== undefined && source.kind !== 'artifact')
      throw new OrchError(
        'INVALID_PARAMS',
        `artifact: plugin '${id}' is loaded from a file (${source.kind === 'file' ? source.path : ''}), not from the artifact registry`,
      );
    const next: ResolvedPlugin = {
      ...cfg,
      ...(req.sha256 === undefined ? {} : { sha256: req.sha256 }),
      ...(req.artifact === undefined || source.kind !== 'artifact'
        ? {}
        : { source: { ...source, id: req.artifact } }),
    };
    let fresh: PluginRuntime;
    try {
      fresh = await PluginHost.#start(this.#o, next, i);
    } catch (err) {
      if (!(err instanceof PluginLoadError)) throw err;
      this.#o.logger.warn(
        { event: 'plugin.reload_refused', plugin: id, plugin_version: old.version, cause: err.kind },
        `plugin '${id}': reload refused, ${old.version} stays active: ${err.message}`,
      );
      const code = err.kind === 'trust' ? 'UNTRUSTED_ARTIFACT' : 'CONFLICT';
      throw new OrchError(code, `reload of plugin '${id}' refused: ${err.message}`, { cause: err });
    }
    // One synchronous assignment: no admission sees neither or both versions.
    this.#runtimes[i] = fresh;
    this.#configs[i] = next;
    this.#watch(fresh);
    this.#o.logger.info(
      {
        event: 'plugin.reloaded',
        plugin: id,
        plugin_version: fresh.version,
        previous_version: old.version,
        sha256: fresh.plugin.sha256,
        previous_sha256: old.plugin.sha256,
        previous_state: old.state,
      },
      `plugin '${id}' reloaded: ${old.version} -> ${fresh.version}`,
    );
    const retiring = old.retire().catch(() => undefined);
    this.#retiring.add(retiring);
    void retiring.finally(() => this.#retiring.delete(retiring));
    return this.#view(fresh);
  }

  /** Loads, checks and starts one plugin; throws {@link PluginLoadError}. */
  static async #start(o: PluginHostOptions, cfg: ResolvedPlugin, i: number): Promise<PluginRuntime> {
    const loaded = await loadPlugin(cfg, i, o.trust, o.artifacts);
    if (o.trust !== undefined && loaded.trust.reason !== 'signed')
      o.logger.warn(
        {
          event: 'plugin.untrusted_load',
          plugin: cfg.id,
          reason: loaded.trust.reason,
          policy: o.trust.policy,
          sha256: loaded.sha256,
        },
        `plugin '${cfg.id}': ${trustProblem(loaded.trust.reason, loaded.trust.keyId)}; loading anyway (permissive trust policy)`,
      );
    const runtime = new PluginRuntime(loaded);
    try {
      await runtime.start();
    } catch (err) {
      await runtime.close();
      throw new PluginLoadError(
        `plugins[${i}] '${cfg.id}': the module does not start: ${(err as Error).message}`,
      );
    }
    o.logger.info(
      {
        event: 'plugin.loaded',
        plugin: cfg.id,
        ...(cfg.source.kind === 'artifact'
          ? { artifact: cfg.source.id, artifact_tenant: cfg.source.tenant }
          : {}),
        plugin_version: loaded.manifest.version,
        sha256: loaded.sha256,
        trust: loaded.trust.reason,
        ...(loaded.trust.keyId === undefined ? {} : { key_id: loaded.trust.keyId }),
        hooks: cfg.hooks,
        budget_ms: cfg.budgetMs,
        allowance_ms: await runtime.allowanceMs(),
      },
      `plugin '${cfg.id}' ${loaded.manifest.version} loaded`,
    );
    return runtime;
  }

  get size(): number {
    return this.#runtimes.length;
  }

  list(): PluginView[] {
    return this.#runtimes.map((r) => this.#view(r));
  }

  #view(r: PluginRuntime): PluginView {
    return {
      id: r.id,
      version: r.version,
      abi: r.plugin.manifest.abi,
      hooks: [...r.plugin.config.hooks],
      state: r.state,
      sha256: r.plugin.sha256,
      ...(r.plugin.config.source.kind === 'artifact' ? { artifact: r.plugin.config.source.id } : {}),
      loaded_at: r.loadedAt,
      budget_ms: r.plugin.config.budgetMs,
      memory_max_bytes: r.plugin.memoryMaxBytes,
      counters: {
        calls: r.counters.calls,
        ok: r.counters.ok,
        fallbacks: r.counters.fallbacks,
        skipped: r.counters.skipped,
        timeouts: r.counters.timeouts,
        traps: r.counters.traps,
        malformed: r.counters.malformed,
        busy: r.counters.busy,
        consecutive_failures: r.counters.consecutiveFailures,
      },
    };
  }

  admitted(tenant: string, tokens: number, atMs: number): void {
    if (this.#runtimes.length > 0) this.#window.add(tenant, tokens, atMs);
  }

  get placesTasks(): boolean {
    return this.#runtimes.some((r) => r.plugin.config.hooks.includes('placement'));
  }

  async admission(q: AdmissionQuery): Promise<AdmissionAdjustment> {
    let adjustment: AdmissionAdjustment = {};
    for (const r of this.#runtimes) {
      if (!r.plugin.config.hooks.includes('admission')) continue;
      const priority = adjustment.priority ?? q.task.priority;
      const decision = await this.#admissionCall(r, { ...q, task: { ...q.task, priority } });
      if (decision === undefined || decision.decision === 'accept') continue;
      if (decision.decision === 'refuse')
        throw new OrchError(decision.code, `plugin '${r.id}': ${decision.message}`, {
          engine: q.pool.engine,
          poolId: q.pool.id,
          // A 429 promises Retry-After (data.yaml): a plugin that names no wait gets the host's.
          ...(decision.retry_after_ms !== undefined
            ? { retryAfterMs: decision.retry_after_ms }
            : ERROR_CODES[decision.code].httpStatus === 429
              ? { retryAfterMs: DEFAULT_REFUSAL_RETRY_MS }
              : {}),
        });
      adjustment = {
        ...adjustment,
        ...(decision.priority === undefined ? {} : { priority: decision.priority }),
        ...(decision.weight === undefined ? {} : { weight: decision.weight }),
      };
    }
    return adjustment;
  }

  async placement(q: PlacementQuery): Promise<TaskPlacement | undefined> {
    for (const r of this.#runtimes) {
      if (!r.plugin.config.hooks.includes('placement')) continue;
      const snapshot = {
        abi: ABI_VERSION,
        hook: 'placement',
        now_ms: q.nowMs,
        plugin: { id: r.id, version: r.version },
        params: r.plugin.config.params,
        task: taskSnapshot(q.task),
        tenant: { id: q.tenant },
        ...this.#toolResults(r.id, q.nowMs),
        replicas: q.replicas.map((c) => ({
          id: c.id,
          pool_id: c.poolId,
          host: c.host,
          ready: c.ready,
          slots_total: c.slotsTotal,
          in_flight: c.inFlight,
          queue_depth: c.queueDepth,
          devices: [...c.devices],
          topology_cost: c.topologyCost,
          session: c.session,
        })),
      };
      const known = new Set(q.replicas.map((c) => c.id));
      const called = await this.#call<PlacementDecision>(r, 'placement', snapshot, q, (v) =>
        placementProblem(v, known),
      );
      if (called === undefined || called.decision.decision === 'default') continue;
      const d = called.decision;
      this.#decided(r, 'placement', q, called.latencyMs, {
        decision: 'place',
        ...(d.allow === undefined ? {} : { allow: d.allow }),
        ...(d.scores === undefined ? {} : { scores: d.scores }),
      });
      return {
        plugin: r.id,
        ...(d.allow === undefined ? {} : { allow: d.allow }),
        ...(d.scores === undefined ? {} : { scores: d.scores }),
      };
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.#reloads;
    await Promise.all([
      ...this.#retiring,
      ...this.#runtimes.map((r) => r.close()),
      ...[...this.#tools.values()].map((t) => t.close()),
    ]);
  }

  /** One admission call; undefined: the built-in policy decides (fallback or skipped). */
  async #admissionCall(r: PluginRuntime, q: AdmissionQuery): Promise<Decision | undefined> {
    const cfg = r.plugin.config;
    const usage = this.#window.usage(q.tenant, q.nowMs);
    const snapshot = {
      abi: ABI_VERSION,
      hook: 'admission',
      now_ms: q.nowMs,
      plugin: { id: r.id, version: r.version },
      params: cfg.params,
      task: taskSnapshot(q.task),
      tenant: { id: q.tenant, tokens_last_minute: usage.tokens, tasks_last_minute: usage.tasks },
      pool: {
        id: q.pool.id,
        engine: q.pool.engine,
        queue_depth: q.pool.queueDepth,
        queue_capacity: q.pool.queueCapacity,
      },
      bounds: {
        priorities: cfg.bounds.priorities,
        weight_min: cfg.bounds.weightMin,
        weight_max: cfg.bounds.weightMax,
      },
      ...this.#toolResults(r.id, q.nowMs),
    };
    const called = await this.#call<Decision>(r, 'admission', snapshot, q, (v) => admissionProblem(v, cfg));
    const d = called?.decision;
    if (called !== undefined && d !== undefined && d.decision !== 'accept')
      this.#decided(r, 'admission', q, called.latencyMs, {
        decision: d.decision,
        ...(d.decision === 'refuse' ? { code: d.code } : {}),
        ...(d.decision === 'adjust' ? { priority: d.priority, weight: d.weight } : {}),
      });
    return d;
  }

  /**
   * Calls one plugin on one hook and checks its decision; undefined: the built-in policy decides
   * (skipped, or a fallback with its logged reason).
   */
  async #call<D extends object>(
    r: PluginRuntime,
    hook: PluginHook,
    snapshot: object,
    q: { readonly tenant: string; readonly task: { readonly taskId: string } },
    problemOf: (decision: unknown) => string | undefined,
  ): Promise<{ decision: D; latencyMs: number } | undefined> {
    const labels = { plugin: r.id, hook };
    const outcome = await r.call(hook, JSON.stringify(snapshot));
    if (outcome.kind === 'skipped') {
      this.#o.metrics.inc('plugin_calls_total', { ...labels, result: 'skipped' });
      return undefined;
    }
    this.#o.metrics.observe('plugin_latency_ms', labels, outcome.latencyMs);
    if (outcome.kind === 'fallback') return this.#fallback(r, hook, q, outcome.reason, outcome.detail);
    let decision: unknown;
    try {
      decision = JSON.parse(outcome.output);
    } catch {
      decision = undefined;
    }
    const requests = (decision as { tools?: ToolRequest[] } | undefined)?.tools;
    const problem =
      decision === undefined
        ? 'the decision is not JSON'
        : (problemOf(decision) ?? toolGrantProblem(r.id, r.plugin.config.tools, requests));
    if (problem !== undefined) {
      r.malformed();
      return this.#fallback(r, hook, q, 'malformed', problem);
    }
    r.succeeded();
    // After the decision is known good and before it applies: the calls run on their own.
    if (requests !== undefined && requests.length > 0)
      this.#tools.get(r.id)?.request(requests, q.task.taskId);
    this.#o.metrics.inc('plugin_calls_total', { ...labels, result: 'ok' });
    return { decision: decision as D, latencyMs: outcome.latencyMs };
  }

  /** The one log line of a decision that is not the default. */
  #decided(
    r: PluginRuntime,
    hook: PluginHook,
    q: { readonly tenant: string; readonly task: { readonly taskId: string } },
    latencyMs: number,
    fields: Record<string, unknown>,
  ): void {
    const verb =
      fields.decision === 'refuse' ? 'refused' : fields.decision === 'place' ? 'placed' : 'adjusted';
    this.#o.logger.info(
      {
        event: 'plugin.decision',
        plugin: r.id,
        plugin_version: r.version,
        hook,
        ...fields,
        latency_ms: Math.round(latencyMs * 1000) / 1000,
        job_id: q.task.taskId,
        tenant_id: q.tenant,
      },
      `plugin '${r.id}' ${verb} task ${q.task.taskId}`,
    );
  }

  #fallback(
    r: PluginRuntime,
    hook: PluginHook,
    q: { readonly tenant: string; readonly task: { readonly taskId: string } },
    reason: FallbackReason,
    detail: string,
  ): undefined {
    this.#o.metrics.inc('plugin_calls_total', { plugin: r.id, hook, result: 'fallback' });
    this.#o.metrics.inc('plugin_fallbacks_total', { plugin: r.id, reason });
    this.#o.logger.warn(
      {
        event: 'plugin.fallback',
        plugin: r.id,
        plugin_version: r.version,
        hook,
        reason,
        job_id: q.task.taskId,
        tenant_id: q.tenant,
      },
      `plugin '${r.id}' fell back to the built-in ${hook} policy (${reason}): ${detail}`,
    );
    return undefined;
  }
}

function taskSnapshot(t: AdmissionQuery['task']): Record<string, unknown> {
  return {
    task_id: t.taskId,
    session_id: t.sessionId,
    workload: t.workload,
    model_ref: t.modelRef,
    engine: t.engine,
    priority: t.priority,
    prompt_tokens: t.promptTokens,
    max_tokens: t.maxTokens,
    ...(t.expectedTokens === undefined ? {} : { expected_tokens: t.expectedTokens }),
    deadline_ms: t.deadlineMs,
  };
}

/** Why an admission decision cannot be used, or undefined. */
function admissionProblem(decision: unknown, cfg: ResolvedPlugin): string | undefined {
  if (!validateDecision(decision))
    return `the decision does not match its schema: ${describeErrors(validateDecision.errors, 'decision')}`;
  if (decision.decision !== 'adjust') return undefined;
  if (decision.priority !== undefined && !cfg.bounds.priorities.includes(decision.priority))
    return `priority '${decision.priority}' is outside bounds.priorities [${cfg.bounds.priorities.join(', ')}]`;
  if (
    decision.weight !== undefined &&
    (decision.weight < cfg.bounds.weightMin || decision.weight > cfg.bounds.weightMax)
  )
    return `weight ${decision.weight} is outside [${cfg.bounds.weightMin}, ${cfg.bounds.weightMax}]`;
  return undefined;
}

/** Why a placement decision cannot be used (schema, or a replica the snapshot did not list). */
function placementProblem(decision: unknown, known: ReadonlySet<string>): string | undefined {
  if (!validatePlacement(decision))
    return `the decision does not match its schema: ${describeErrors(validatePlacement.errors, 'decision')}`;
  if (decision.decision !== 'place') return undefined;
  const named = [...(decision.allow ?? []), ...Object.keys(decision.scores ?? {})];
  const unknown = named.filter((id) => !known.has(id));
  if (unknown.length > 0)
    return `replica(s) ${[...new Set(unknown)].map((id) => `'${id}'`).join(', ')} are not in the snapshot`;
  return undefined;
}
