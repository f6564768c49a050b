/**
 * Composition root: from a `ResolvedConfig` to a running orchestrator (engines provisioned and
 * supervised, HTTP listening). `llorch` subcommands are thin shells over `startOrchestrator`.
 */
import type { TracerProvider } from '@opentelemetry/api';
import { otlpTracerProvider } from './tracing/otlp.js';
import { TaskTracer } from './tracing/task-tracer.js';
import type { FastifyInstance } from 'fastify';
import type { ResolvedConfig } from './config/resolved-config.js';
import { GpuMonitor, gpuConsumers } from './gpu/gpu-monitor.js';
import { CapacityPlanner } from './pool/capacity-planner.js';
import { ArtifactRegistry } from './artifacts/artifact-registry.js';
import { ArtifactVerifier } from './catalog/artifact-verifier.js';
import { CatalogService, type CatalogAddRequest } from './catalog/catalog-service.js';
import { ModelPreparation } from './catalog/model-preparation.js';
import { resolveReloadTarget } from './catalog/reload-target.js';
import { NodeRegistry } from './nodes/node-registry.js';
import { openStore } from './persistence/open-store.js';
import { TaskJournal } from './persistence/task-journal.js';
import { RemotePoolSupervisor } from './nodes/remote-supervisor.js';
import { keyBeyondLoopback } from './nodes/engine-credentials.js';
import { createSupervisor, type PoolFactoryOptions } from './pool/pool-factory.js';
import { reapOrphanEngines, runDirOf } from './pool/run-files.js';
import { systemClock, type Clock } from './domain/types.js';
import { createHttpServer } from './http/server.js';
import { OrchMetrics } from './metrics/metrics.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { PluginHost } from './plugins/plugin-host.js';
import { ToolProxy } from './tools/tool-proxy.js';
import type { PoolSupervisor } from './pool/replica.js';
import { configSecrets } from './util/redact.js';
import { createLogger, type Logger } from './util/logger.js';

export interface StartOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Progress of slow one-time steps (building llama-server). */
  readonly onProgress?: (line: string) => void;
  /** Catalog entries to add (and activate) before pools start: the dev profile's generated model. */
  readonly bootstrapCatalog?: readonly CatalogAddRequest[];
  /** Collect Node process metrics (off in tests that start many orchestrators). */
  readonly processMetrics?: boolean;
  /** Where task spans go; default: OTLP/HTTP when `tracing.otlp_endpoint` is set, else none. */
  readonly tracerProvider?: TracerProvider;
  /**
   * Journal accepted tasks in the store (SPEC §17.1), default true. False only to measure what
   * the journal costs (bench `journal`): without it no task survives a restart.
   */
  readonly taskJournal?: boolean;
}

export interface RunningOrchestrator {
  readonly config: ResolvedConfig;
  readonly url: string;
  readonly port: number;
  readonly orchestrator: Orchestrator;
  readonly http: FastifyInstance;
  readonly metrics: OrchMetrics;
  /** Resolves when every pool finished its startup (each replica ready or failed). */
  readonly ready: Promise<void>;
  /** Graceful shutdown: stop admitting, drain within `drainMs` (default `shutdown.drain_ms`), stop engines. */
  close(drainMs?: number): Promise<void>;
}

/** Runs a node command on every host; undefined when all succeeded, else the causes. */
async function onHosts(
  hosts: readonly string[],
  run: (host: string) => Promise<{ ok: boolean; cause?: string }>,
): Promise<string | undefined> {
  const results = await Promise.all(hosts.map(run));
  const failed = results.filter((r) => !r.ok).map((r) => r.cause ?? 'failed');
  return failed.length === 0 ? undefined : failed.join('; ');
}

export async function startOrchestrator(
  config: ResolvedConfig,
  opts: StartOptions = {},
): Promise<RunningOrchestrator> {
  const logger =
    opts.logger ??
    createLogger({
      level: config.logging.level,
      redactPatterns: config.logging.redactPatterns,
      secrets: configSecrets(config),
    });
  const onProgress = opts.onProgress ?? ((line: string) => logger.info({ event: 'engine.build' }, line));
  if (config.profile === 'dev') {
    const cpuPools = config.pools.filter((p) => p.devices === 'cpu').map((p) => p.id);
    if (cpuPools.length > 0) {
      logger.warn(
        { event: 'profile.dev', pools: cpuPools },
        `DEV PROFILE: pools ${cpuPools.join(', ')} run on CPU. This is for development only; ` +
          'production (profile: prod) refuses CPU inference (ORCH-1101).',
      );
    }
  }
  const metrics = new OrchMetrics({ processMetrics: opts.processMetrics ?? true });
  const store = await openStore(config);
  const artifacts = new ArtifactRegistry(store, opts.clock ?? systemClock, config.storage.maxArtifactBytes);
  // First after the store (plugins may be loaded by digest from its artifact registry): a refused
  // plugin (digest, trust, manifest, memory cap, params) stops the start with its reason.
  let plugins: PluginHost | undefined;
  // One proxy for clients and plugins: a plugin granted a tenant's tools spends that tenant's rate.
  const tools = new ToolProxy({ config, metrics, logger });
  try {
    plugins =
      config.plugins.length > 0
        ? await PluginHost.load({
            plugins: config.plugins,
            metrics,
            logger,
            // Plugins are held to the catalog's trust policy, like models.
            trust: {
              policy: config.catalog.trustPolicy,
              verifier: await ArtifactVerifier.load(config.catalog.trustRoots),
            },
            artifacts: (tenant, id) => artifacts.get(tenant, id),
            tools,
            now: () => (opts.clock ?? systemClock).now(),
          })
        : undefined;
  } catch (err) {
    await store.close();
    throw err;
  }
  const catalog = await CatalogService.open(store, config, metrics, logger, opts.clock ?? systemClock);
  const gpu = new GpuMonitor(config, logger);
  await gpu.detect();
  if (opts.bootstrapCatalog) await catalog.ensure(opts.bootstrapCatalog);
  // One planner for every pool of this host: preloads that share a GPU are accounted together.
  const planner = new CapacityPlanner({ read: () => gpu.refresh(), logger });
  // Every local load (start, reload) is verified against the catalog by one preparation step.
  const preparation = ModelPreparation.forOrchestrator(config, catalog, metrics, logger);
  const factory: PoolFactoryOptions = {
    config,
    logger,
    onProgress,
    metrics,
    gpus: () => gpu.gpus,
    catalog,
    preparation,
    planner,
    gpuTelemetry: () => gpu.snapshot(),
  };
  // Engines a crashed predecessor on this data_dir left running hold devices and ports: end them first.
  await reapOrphanEngines(runDirOf(config.dataDir), { logger });
  const supervisors = new Map<string, PoolSupervisor>();
  const remote = new Map<string, RemotePoolSupervisor>();
  for (const pool of config.pools) {
    if (pool.hosts.length > 0) {
      // Engines of this pool run on other hosts; their pool-managerd registers the replicas.
      const sup = new RemotePoolSupervisor(pool, logger, (node, cmd) => nodes.command(node, cmd));
      remote.set(pool.id, sup);
      supervisors.set(pool.id, sup);
    } else supervisors.set(pool.id, await createSupervisor(factory, keyBeyondLoopback(pool)));
  }
  const nodes = new NodeRegistry({
    credentials: config.nodes,
    timeoutMs: config.nodeTimeoutMs,
    heartbeatMs: Math.max(50, Math.floor(config.nodeTimeoutMs / 4)),
    logger,
    pools: remote,
  });
  const otlp =
    opts.tracerProvider === undefined && config.tracing !== undefined
      ? otlpTracerProvider(config.tracing)
      : undefined;
  const tracerProvider = opts.tracerProvider ?? otlp;
  const journaling = opts.taskJournal ?? true;
  const journal = new TaskJournal({
    store,
    onError: (err, ops) =>
      logger.error({ err, event: 'journal.write_failed', ops }, 'task journal write failed'),
  });
  const orchestrator = new Orchestrator({
    config,
    ...(journaling ? { journal } : {}),
    ...(plugins ? { policy: plugins } : {}),
    ...(tracerProvider === undefined ? {} : { tracer: new TaskTracer(tracerProvider) }),
    supervisors,
    metrics,
    logger,
    clock: opts.clock ?? systemClock,
    createSupervisor: (pool) => createSupervisor(factory, keyBeyondLoopback(pool)),
    gpus: () => gpu.gpus,
    modelState: (id) => catalog.stateOf(id),
    untrusted: (poolId, modelId) => preparation.untrustedCause(poolId, modelId),
    resolveReloadTarget: (pool, ref) => resolveReloadTarget({ catalog, logger }, pool, ref),
    route: (modelRef, sessionId) => catalog.routeFor(modelRef, sessionId),
    ledger: {
      add: (tenant, sessionId, usage, atMs) => store.addSessionUsage(tenant, sessionId, usage, atMs),
      get: (tenant, sessionId) => store.getSessionUsage(tenant, sessionId),
    },
    remoteReload: async (pool, modelPath, digest) => {
      // A catalog entry travels with its digest and signature: the node verifies them itself.
      const signed = digest === undefined ? undefined : (await catalog.findByDigest(digest))[0];
      const trust =
        digest === undefined
          ? {}
          : { model_digest: digest, ...(signed?.signature ? { model_signature: signed.signature } : {}) };
      return onHosts(pool.config.hosts, (host) =>
        nodes.command(host, { op: 'reload', pool_id: pool.id, model_ref: modelPath, ...trust }),
      );
    },
    remoteStop: (pool) =>
      onHosts(pool.config.hosts, (host) => nodes.command(host, { op: 'stop', pool_id: pool.id })),
  });
  // Deprecated models' pools drain by the deadline given; Retired models' pools unload now.
  catalog.onStateChange = (id, _from, to, deadlineMs) => {
    const pools = orchestrator.pools.filter((p) => p.config.model.id === id);
    if (to === 'Deprecated' && deadlineMs !== undefined) {
      const t = setTimeout(() => {
        if (catalog.stateOf(id) === 'Deprecated') for (const p of pools) orchestrator.drain(p.id, 5_000);
      }, deadlineMs);
      t.unref();
    }
    if (to === 'Retired')
      for (const p of pools) {
        orchestrator.drain(p.id, deadlineMs ?? 0);
        void orchestrator.unloadWhenDrained(p.id);
      }
  };
  // A predecessor on this store may have stopped with tasks in flight (kill -9 included).
  const recovered = orchestrator.recover(
    journaling ? await store.loadTaskJournal(config.storage.rememberedTaskIds) : [],
  );
  if (recovered.requeued + recovered.reset + recovered.expired > 0)
    logger.info(
      { event: 'journal.recovered', ...recovered },
      `tasks taken back from the journal: ${recovered.requeued} queued again, ${recovered.reset} ended WORKER_RESET, ${recovered.expired} past their deadline`,
    );
  // The restart counts must be durable before any stream hands out this run's event ids.
  await journal.committed();
  await store.pruneTaskJournal(config.storage.rememberedTaskIds);
  gpu.start(metrics, () => gpuConsumers(orchestrator.pools));
  const http = await createHttpServer({
    config,
    orchestrator,
    metrics,
    logger,
    nodes,
    artifacts,
    catalog,
    tools,
    ...(plugins ? { plugins } : {}),
  });
  try {
    await http.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await orchestrator.close(0);
    await journal.close();
    await plugins?.close();
    throw err;
  }
  const address = http.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host}:${port}`;
  logger.info({ event: 'http.listening', url }, `orchestratord listening on ${url}`);

  const ready = Promise.all([...supervisors.values()].map((s) => s.start())).then(() => undefined);
  let closing: Promise<void> | undefined;
  return {
    config,
    url,
    port,
    orchestrator,
    http,
    metrics,
    ready,
    close: (drainMs = config.shutdown.drainMs) =>
      (closing ??= (async () => {
        gpu.stop();
        nodes.close();
        await orchestrator.close(drainMs);
        await http.close();
        await plugins?.close();
        await journal.close();
        await store.close();
        await otlp?.shutdown(); // flushes the last spans
        // A reload may have replaced a pool's supervisor: stop the current ones.
        await Promise.all(orchestrator.pools.map((p) => p.supervisor.stop()));
        logger.info({ event: 'shutdown.complete' }, 'orchestratord stopped');
      })()),
  };
}
