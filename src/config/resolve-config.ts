/**
 * From the validated YAML document (`RawConfig`) to the `ResolvedConfig` every module reads:
 * defaults applied, camelCase names with units, paths made absolute, and the cross-field checks a
 * JSON Schema cannot express (SPEC §1, §11, §13).
 */
import { checkPatterns, DEFAULT_SECRET_PATTERNS } from '../util/redact.js';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { isIP } from 'node:net';
import type { Priority } from '../domain/types.js';
import type { GpuDevice, ResolvedApiKey, ResolvedConfig, ResolvedPool } from './resolved-config.js';
import { DEFAULTS, type RawConfig, type RawPool } from './schema.js';
import { resolveEngineKey } from './resolve-engine-key.js';
import { resolveTritonModels } from '../engines/triton/model-names.js';
import { ConfigError } from './config-error.js';
import { resolvePlugins } from '../plugins/plugin-config.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import { validateEngineFields } from '../engines/validate-engine-fields.js';
import { resolveToolsConfig } from '../tools/tools-config.js';

/** Re-exported: callers have always taken it from here. */
export { ConfigError };

export interface ResolveOptions {
  /** Directory relative paths are resolved against: the config file's directory. Default: cwd. */
  baseDir?: string;
  /** Environment for `XDG_CACHE_HOME`. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Home directory for `~` and the cache default. Default: `os.homedir()`. */
  homeDir?: string;
}

/** True for addresses that only the local host can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** Applies defaults and cross-field checks. Throws `ConfigError` listing every problem found. */
export function resolveConfig(raw: RawConfig, opts: ResolveOptions = {}): ResolvedConfig {
  const baseDir = resolve(opts.baseDir ?? process.cwd());
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? homedir();
  const problems: string[] = [];

  const expandHome = (p: string): string =>
    p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p;
  const toPath = (p: string): string => resolve(baseDir, expandHome(p));
  /** A binary: a bare name stays a PATH lookup; anything with a separator is a path. */
  const toBinary = (p: string | undefined): string | undefined =>
    p === undefined ? undefined : p.includes('/') || p.startsWith('~') ? toPath(p) : p;

  const profile = raw.profile ?? DEFAULTS.profile;
  problems.push(...checkPatterns(raw.logging?.redact_patterns ?? []));
  if (raw.testing?.provider_states === true && profile !== 'dev')
    problems.push('testing.provider_states: test-only hooks are refused by the prod profile');
  const listen = {
    host: raw.listen?.host ?? DEFAULTS.listenHost,
    port: raw.listen?.port ?? DEFAULTS.listenPort,
  };

  const keys: ResolvedApiKey[] = (raw.auth?.keys ?? []).map((k) => ({
    id: k.id,
    tenant: k.tenant,
    sha256: k.sha256,
    scopes: [...k.scopes],
    pools: k.pools === undefined ? undefined : [...k.pools],
  }));
  checkUnique(
    keys.map((k) => k.id),
    (i, first) => `auth.keys[${i}].id: duplicate key id '${keys[i]?.id ?? ''}' (also auth.keys[${first}])`,
    problems,
  );
  checkUnique(
    keys.map((k) => k.sha256),
    (i, first) => `auth.keys[${i}].sha256: same key hash as auth.keys[${first}]`,
    problems,
  );
  // SPEC §11: running without keys is only allowed when bound to loopback.
  if (keys.length === 0 && !isLoopbackHost(listen.host)) {
    problems.push(
      `listen.host: '${listen.host}' is not a loopback address and auth.keys is empty; ` +
        `configure API keys or bind to 127.0.0.1 (SPEC §11)`,
    );
  }

  const rawTenants = raw.fairness?.tenants ?? [];
  checkUnique(
    rawTenants.map((t) => t.id),
    (i, first) =>
      `fairness.tenants[${i}].id: duplicate tenant '${rawTenants[i]?.id ?? ''}' (also fairness.tenants[${first}])`,
    problems,
  );
  const tenants = new Map(
    rawTenants.map((t) => [
      t.id,
      {
        weight: t.weight ?? 1,
        maxConcurrent: t.max_concurrent,
        rps: t.rps,
        burst: t.burst ?? Math.max(1, Math.ceil(t.rps ?? 1)),
      },
    ]),
  );

  checkUnique(
    raw.pools.map((p) => p.id),
    (i, first) => `pools[${i}].id: duplicate pool id '${raw.pools[i]?.id ?? ''}' (also pools[${first}])`,
    problems,
  );
  // A pool limit names configured pools and only limits control operations (SPEC §17 §11).
  const poolIds = new Set(raw.pools.map((p) => p.id));
  (raw.auth?.keys ?? []).forEach((k, i) => {
    if (k.pools === undefined) return;
    if (!k.scopes.includes('control'))
      problems.push(`auth.keys[${i}].pools: only limits control operations; the key has no 'control' scope`);
    for (const id of k.pools)
      if (!poolIds.has(id)) problems.push(`auth.keys[${i}].pools: no pool '${id}' is configured`);
  });
  if (raw.metrics?.require_key === true && !keys.some((k) => k.scopes.includes('metrics')))
    problems.push(
      "metrics.require_key: no auth.keys entry has the 'metrics' scope, so /metrics could never be read",
    );
  const keyContext = { env, toPath, isNode: raw.node !== undefined, isLoopback: isLoopbackHost };
  const engineKey = (p: RawPool, at: string) => resolveEngineKey(p, at, keyContext, problems);
  const pools = raw.pools.map((p, i) =>
    resolvePool(p, `pools[${i}]`, profile, toPath, toBinary, problems, engineKey),
  );

  const cacheDir =
    raw.engines?.cache_dir !== undefined ? toPath(raw.engines.cache_dir) : defaultCacheDir(env, home);
  // Read where llama-server is provisioned (engines/llamacpp/provision.ts); refused here, by name.
  const llamaBuildEnv = env['LLORCH_LLAMA_BUILD'];
  if (llamaBuildEnv !== undefined && llamaBuildEnv !== '' && !['auto', 'cpu', 'cuda'].includes(llamaBuildEnv))
    problems.push(`LLORCH_LLAMA_BUILD: '${llamaBuildEnv}' is not a llama-server build (cpu, cuda or auto)`);

  const tools = resolveToolsConfig(raw.tools, problems);
  const plugins = resolvePlugins(raw.plugins, toPath, problems, tools);

  if (problems.length > 0) throw new ConfigError(problems);

  const config: ResolvedConfig = {
    profile,
    configMode: raw.config_mode ?? DEFAULTS.configMode,
    listen,
    limits: {
      bodyLimitBytes: raw.limits?.body_limit_bytes ?? DEFAULTS.bodyLimitBytes,
      maxHeaderBytes: raw.limits?.max_header_bytes ?? DEFAULTS.maxHeaderBytes,
      idleTimeoutMs: raw.limits?.idle_timeout_ms ?? DEFAULTS.idleTimeoutMs,
      requestTimeoutMs: raw.limits?.request_timeout_ms ?? DEFAULTS.requestTimeoutMs,
    },
    auth: { keys },
    fairness: {
      weights: {
        interactive: raw.fairness?.weights?.interactive ?? DEFAULTS.interactiveWeight,
        batch: raw.fairness?.weights?.batch ?? DEFAULTS.batchWeight,
      },
      tenants,
      shareWindowTokens: raw.fairness?.share_window_tokens ?? DEFAULTS.shareWindowTokens,
    },
    scheduling: {
      mode: raw.scheduling?.mode ?? 'wfq',
      deadlineSlackTokens: raw.scheduling?.deadline_slack_tokens ?? DEFAULTS.deadlineSlackTokens,
      preemption: raw.scheduling?.preemption ?? 'soft',
      placement: raw.scheduling?.placement ?? 'prefix-aware',
    },
    sse: {
      metricsIntervalMs: raw.sse?.metrics_interval_ms ?? DEFAULTS.sseMetricsIntervalMs,
      retentionMs: raw.sse?.retention_ms ?? DEFAULTS.sseRetentionMs,
      maxEventsPerTask: raw.sse?.max_events_per_task ?? DEFAULTS.sseMaxEventsPerTask,
      cancelOnDisconnect: raw.sse?.cancel_on_disconnect ?? DEFAULTS.sseCancelOnDisconnect,
    },
    openai: {
      defaultPriority: raw.openai?.default_priority ?? 'interactive',
      deadlineMs: {
        interactive: raw.openai?.deadline_ms?.interactive ?? 120_000,
        batch: raw.openai?.deadline_ms?.batch ?? 3_600_000,
      },
    },
    shutdown: {
      drainMs: raw.shutdown?.drain_ms ?? DEFAULTS.shutdownDrainMs,
      keepQueued: raw.shutdown?.keep_queued ?? true,
    },
    logging: {
      level: raw.logging?.level ?? DEFAULTS.logLevel,
      redactPatterns: raw.logging?.redact_patterns ?? DEFAULT_SECRET_PATTERNS,
    },
    metrics: {
      requireKey: raw.metrics?.require_key ?? false,
      engineRefreshMs: raw.metrics?.engine_refresh_ms ?? 5_000,
    },
    engines: {
      llamaServerPath: toBinary(raw.engines?.llama_server_path),
      llamaBuild: raw.engines?.llama_build ?? 'auto',
      cacheDir,
      nvidiaSmiPath: toBinary(raw.engines?.nvidia_smi_path) ?? 'nvidia-smi',
      telemetryIntervalMs: raw.engines?.telemetry_interval_ms ?? 5_000,
    },
    dataDir: toPath(raw.data_dir ?? DEFAULTS.dataDir),
    testing: { providerStates: raw.testing?.provider_states ?? false },
    tools,
    plugins,
    tracing:
      raw.tracing === undefined
        ? undefined
        : {
            endpoint: raw.tracing.otlp_endpoint,
            serviceName: raw.tracing.service_name ?? 'llama-orch',
            sampleRatio: raw.tracing.sample_ratio ?? 1,
            headers: raw.tracing.headers ?? {},
          },
    storage: {
      kind: raw.storage?.kind ?? 'sqlite',
      sqlitePath: toPath(raw.storage?.sqlite_path ?? join(raw.data_dir ?? DEFAULTS.dataDir, 'llorch.db')),
      postgresUrlEnv: raw.storage?.postgres_url_env ?? 'LLORCH_POSTGRES_URL',
      maxArtifactBytes: raw.storage?.max_artifact_bytes ?? 1_048_576,
      rememberedTaskIds: raw.storage?.remembered_task_ids ?? 1_000_000,
    },
    catalog: {
      // Strict unless set, except in the dev profile, where unsigned local models load with a warning.
      trustPolicy: raw.catalog?.trust_policy ?? (profile === 'dev' ? 'permissive' : 'strict'),
      trustRoots: (raw.catalog?.trust_roots ?? []).map(toPath),
      allowedSources: [...(raw.catalog?.allowed_sources ?? ['path', 'file'])],
      hfEndpoint: raw.catalog?.hf_endpoint ?? 'https://huggingface.co',
      overrideTenants: [...(raw.catalog?.override_tenants ?? [])],
      cacheDir: toPath(join(raw.data_dir ?? DEFAULTS.dataDir, 'models', 'cache')),
      cacheQuotaBytes: raw.catalog?.cache_quota_bytes,
    },
    pools,
    nodes: new Map((raw.nodes ?? []).map((n) => [n.id, n.sha256])),
    nodeTimeoutMs: raw.node_timeout_ms ?? 3_000,
    node:
      raw.node === undefined
        ? undefined
        : {
            id: raw.node.id,
            orchestratorUrl: raw.node.orchestrator_url.replace(/\/+$/, ''),
            credentialEnv: raw.node.credential_env ?? 'LLORCH_NODE_CREDENTIAL',
            credentialFile:
              raw.node.credential_file === undefined ? undefined : toPath(raw.node.credential_file),
            advertiseHost: raw.node.advertise_host,
            heartbeatMs: raw.node.heartbeat_ms ?? 500,
          },
  };
  return deepFreeze(config);
}

function resolvePool(
  p: RawPool,
  at: string,
  profile: 'prod' | 'dev',
  toPath: (p: string) => string,
  toBinary: (p: string | undefined) => string | undefined,
  problems: string[],
  engineKey: (p: RawPool, at: string) => string | undefined,
): ResolvedPool {
  const devices: readonly GpuDevice[] | 'cpu' = p.devices === 'cpu' ? 'cpu' : [...p.devices];
  const cpu = devices === 'cpu';
  const worker = p.launch?.worker ?? 'native';

  // ORCH-1101: inference only on NVIDIA GPUs, unless the operator opted into the dev profile.
  // Simulated pools run no inference at all, so any profile may use them.
  if (cpu && profile !== 'dev' && worker === 'native' && p.hosts === undefined) {
    problems.push(
      `${at}.devices: pool '${p.id}' would run its engine on CPU, which the prod profile refuses ` +
        `(ORCH-1101: inference is served only by NVIDIA GPUs); use GPU indices, or 'profile: dev' for local development`,
    );
  }
  const replicas = p.replicas ?? DEFAULTS.replicas;
  if (!Number.isInteger(replicas) || replicas < 1) {
    problems.push(`${at}.replicas: must be an integer >= 1`);
  }
  const versions = p.launch?.sim?.engine_version ?? `sim-${p.engine}-1`;
  const engineVersions =
    typeof versions === 'string' ? Array.from({ length: replicas }, () => versions) : [...versions];
  if (engineVersions.length !== replicas) {
    problems.push(
      `${at}.launch.sim.engine_version: has ${engineVersions.length} entries but the pool has ${replicas} replicas`,
    );
  }
  if (p.topology_cost !== undefined && p.topology_cost.length !== replicas) {
    problems.push(
      `${at}.topology_cost: has ${p.topology_cost.length} entries but the pool has ${replicas} replicas`,
    );
  }
  const apiKey = engineKey(p, at);

  // tensor_split, gpu_memory_utilization and whatever else only some engines take: the driver's.
  problems.push(...validateEngineFields(p, at));
  const tensorSplit = p.tensor_split === undefined ? undefined : [...p.tensor_split];
  const engineLaunch = ENGINE_DRIVERS[p.engine].resolveLaunch(p);

  const openAfterMs = p.slo_breaker?.open_after_ms ?? DEFAULTS.sloBreakerOpenAfterMs;
  const sloWindowMs = p.slo_breaker?.window_ms ?? Math.max(1, Math.floor(openAfterMs / 2));
  // A window as long as the open delay would let one slow or failed task, which stays in the
  // window that long, hold a violation for the whole delay and open the breaker on its own.
  if (sloWindowMs >= openAfterMs) {
    problems.push(
      `${at}.slo_breaker.window_ms: ${sloWindowMs} must be shorter than open_after_ms (${openAfterMs}), so that one bad task cannot open the breaker`,
    );
  }

  const replicaDevices = resolveReplicaDevices(p, at, devices, replicas, problems);

  const capacity = p.queue?.capacity ?? DEFAULTS.queueCapacity;
  const priorityCapacity = {} as Record<Priority, number>;
  for (const prio of ['interactive', 'batch'] as const) {
    const cap = p.admission?.priorities?.[prio]?.capacity;
    if (cap !== undefined && cap > capacity) {
      problems.push(
        `${at}.admission.priorities.${prio}.capacity: ${cap} exceeds queue.capacity (${capacity})`,
      );
    }
    priorityCapacity[prio] = cap ?? capacity;
  }

  return {
    id: p.id,
    engine: p.engine,
    model: {
      id: p.model.id,
      path: p.model.path === undefined ? '' : toPath(p.model.path),
      digest: p.model.digest,
      quant: p.model.quant,
    },
    ctx: p.ctx,
    replicas,
    devices,
    replicaDevices,
    tensorSplit,
    launch: {
      worker,
      sim: {
        tokensPerSecond: p.launch?.sim?.tokens_per_s ?? DEFAULTS.simTokensPerSecond,
        prefillTokensPerSecond: p.launch?.sim?.prefill_tokens_per_s ?? DEFAULTS.simPrefillTokensPerSecond,
        batchSlowdown: p.launch?.sim?.batch_slowdown ?? DEFAULTS.simBatchSlowdown,
        kvTokens: p.launch?.sim?.kv_tokens ?? DEFAULTS.simKvTokens,
        loadMs: p.launch?.sim?.load_ms ?? 0,
        planGpu: p.launch?.sim?.plan_gpu ?? false,
        engineVersions,
        tritonEnsemble: p.launch?.sim?.triton_ensemble ?? 'current',
      },
      triton: resolveTritonModels(p, at, problems),
      apiKey,
      healthIntervalMs: p.launch?.health_interval_ms ?? DEFAULTS.healthIntervalMs,
      healthTimeoutMs: p.launch?.health_timeout_ms ?? DEFAULTS.healthTimeoutMs,
      restart: {
        baseMs: p.launch?.restart?.backoff_base_ms ?? 1_000,
        maxMs: p.launch?.restart?.backoff_max_ms ?? 30_000,
        maxFailures: p.launch?.restart?.max_failures ?? 5,
        windowMs: p.launch?.restart?.window_ms ?? 60_000,
        cooldownMs: p.launch?.restart?.cooldown_ms ?? 60_000,
      },
      binaryPath: toBinary(p.launch?.binary_path),
      host: p.launch?.host ?? DEFAULTS.launchHost,
      threads: p.launch?.threads ?? DEFAULTS.threads,
      parallel: p.launch?.parallel ?? DEFAULTS.parallel,
      contBatching: p.launch?.cont_batching ?? DEFAULTS.contBatching,
      gpuLayers: p.launch?.gpu_layers ?? (cpu ? DEFAULTS.gpuLayersCpu : DEFAULTS.gpuLayersGpu),
      extraArgs: [...(p.launch?.extra_args ?? [])],
      embeddings: p.launch?.embeddings !== undefined && p.launch.embeddings !== false,
      pooling: typeof p.launch?.embeddings === 'object' ? p.launch.embeddings.pooling : undefined,
      startupTimeoutMs: p.launch?.startup_timeout_ms ?? DEFAULTS.startupTimeoutMs,
      gpuMemoryUtilization: engineLaunch.gpuMemoryUtilization,
    },
    queue: {
      capacity,
      fullPolicy: p.queue?.full_policy ?? DEFAULTS.fullPolicy,
      priorityCapacity,
    },
    timeouts: {
      wallMs: p.timeouts?.wall_ms ?? DEFAULTS.wallMs,
      idleMs: p.timeouts?.idle_ms ?? DEFAULTS.idleMs,
    },
    session: {
      ttlMs: p.session?.ttl_ms ?? DEFAULTS.sessionTtlMs,
      maxTurns: p.session?.max_turns ?? DEFAULTS.sessionMaxTurns,
    },
    prices: {
      inputPer1kTokens: p.prices?.input_per_1k_tokens ?? 0,
      outputPer1kTokens: p.prices?.output_per_1k_tokens ?? 0,
    },
    budgets: {
      sessionTokens: p.budgets?.session_tokens,
      sessionWallMs: p.budgets?.session_wall_ms,
      sessionCost: p.budgets?.session_cost,
    },
    sloBreaker: {
      enabled: p.slo_breaker?.enabled ?? DEFAULTS.sloBreakerEnabled,
      windowMs: sloWindowMs,
      openAfterMs,
      closeAfterMs: p.slo_breaker?.close_after_ms ?? DEFAULTS.sloBreakerCloseAfterMs,
      minSamples: p.slo_breaker?.min_samples ?? DEFAULTS.sloBreakerMinSamples,
    },
    hosts: [...(p.hosts ?? [])],
    topologyCost: [...(p.topology_cost ?? [])],
  };
}

/**
 * The device mask of each replica (SPEC §17 §4). `replica_devices` partitions the pool's
 * `devices`: each entry is drawn from them and together they use all of them, so `devices`
 * stays "every GPU of the pool" for whoever reads only that.
 */
function resolveReplicaDevices(
  p: RawPool,
  at: string,
  devices: readonly GpuDevice[] | 'cpu',
  replicas: number,
  problems: string[],
): readonly (readonly GpuDevice[] | 'cpu')[] {
  const perReplica = p.replica_devices;
  if (perReplica === undefined) return Array.from({ length: replicas }, () => devices);
  if (devices === 'cpu') {
    problems.push(`${at}.replica_devices: places replicas on GPUs, but devices is 'cpu'`);
    return Array.from({ length: replicas }, () => devices);
  }
  if (perReplica.length !== replicas)
    problems.push(
      `${at}.replica_devices: has ${perReplica.length} entr${perReplica.length === 1 ? 'y' : 'ies'} ` +
        `but the pool has ${replicas} replica(s); give one device list per replica`,
    );
  const key = (d: GpuDevice) => String(d);
  const pool = new Set(devices.map(key));
  const used = new Set<string>();
  perReplica.forEach((mask, i) => {
    for (const d of mask) {
      used.add(key(d));
      if (!pool.has(key(d)))
        problems.push(
          `${at}.replica_devices[${i}]: GPU ${JSON.stringify(d)} is not in the pool's devices (${devices.map((x) => JSON.stringify(x)).join(', ')})`,
        );
    }
  });
  const unused = devices.filter((d) => !used.has(key(d)));
  if (unused.length > 0)
    problems.push(
      `${at}.replica_devices: no replica uses ${unused.map((d) => JSON.stringify(d)).join(', ')} of devices; ` +
        'list only the GPUs the replicas run on',
    );
  return Array.from({ length: replicas }, (_, i) => [...(perReplica[i] ?? devices)]);
}

function defaultCacheDir(env: Readonly<Record<string, string | undefined>>, home: string): string {
  // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env['XDG_CACHE_HOME'];
  return xdg !== undefined && xdg !== '' && isAbsolute(xdg)
    ? join(xdg, 'llama-orch')
    : join(home, '.cache', 'llama-orch');
}

function checkUnique(
  values: readonly string[],
  message: (index: number, firstIndex: number) => string,
  problems: string[],
): void {
  const seen = new Map<string, number>();
  values.forEach((v, i) => {
    const first = seen.get(v);
    if (first === undefined) seen.set(v, i);
    else problems.push(message(i, first));
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
