/**
 * Composition root: from a `ResolvedConfig` to a running orchestrator (engines provisioned and
 * supervised, HTTP listening). `llorch` subcommands are thin shells over `startOrchestrator`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from './config/resolve-config.js';
import type { ResolvedConfig, ResolvedPool } from './config/resolved-config.js';
import { systemClock, type Clock } from './domain/types.js';
import { ensureLlamaServer } from './engines/llamacpp/provision.js';
import { createHttpServer } from './http/server.js';
import { OrchMetrics } from './metrics/metrics.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { NATIVE_BINARIES, nativeLauncher, simLauncher } from './pool/engine-launcher.js';
import { EnginePoolSupervisor, type SupervisorEvent } from './pool/engine-supervisor.js';
import type { PoolSupervisor } from './pool/replica.js';
import { createLogger, type Logger } from './util/logger.js';

export interface StartOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Progress of slow one-time steps (building llama-server). */
  readonly onProgress?: (line: string) => void;
  /** Collect Node process metrics (off in tests that start many orchestrators). */
  readonly processMetrics?: boolean;
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
  /** Graceful shutdown: stop admitting, drain within `drainMs`, stop engines. */
  close(drainMs?: number): Promise<void>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Supervisor events as metrics (restarts, failure classes, breaker state). */
function eventsToMetrics(metrics: OrchMetrics, pool: ResolvedPool): (e: SupervisorEvent) => void {
  return (e) => {
    const base = { engine: pool.engine, pool_id: pool.id };
    switch (e.kind) {
      case 'restart':
        metrics.inc('pool_restarts_total', { ...base, replica_id: e.replicaId });
        return;
      case 'failure':
        metrics.inc('engine_failures_total', { ...base, reason: e.reason });
        return;
      case 'breaker':
        metrics.set('pool_breaker_open', { ...base, replica_id: e.replicaId }, e.open ? 1 : 0);
        return;
    }
  };
}

async function createSupervisor(
  config: ResolvedConfig,
  pool: ResolvedPool,
  logger: Logger,
  onProgress: (line: string) => void,
  metrics: OrchMetrics,
): Promise<PoolSupervisor> {
  const onEvent = eventsToMetrics(metrics, pool);
  if (pool.launch.worker === 'sim') {
    logger.warn(
      { event: 'pool.simulated', pool_id: pool.id, engine: pool.engine },
      `pool '${pool.id}' runs SIMULATED ${pool.engine} replicas (launch.worker: sim): no real inference`,
    );
    return new EnginePoolSupervisor({ pool, launcher: simLauncher(pool), logger, onEvent });
  }
  let binary: string;
  let modelDigest = pool.model.digest;
  if (pool.engine === 'llamacpp') {
    binary = await ensureLlamaServer({
      explicitPath: pool.launch.binaryPath ?? config.engines.llamaServerPath,
      cacheDir: config.engines.cacheDir,
      onProgress,
    });
    const digest = await sha256File(pool.model.path).catch((err: unknown) => {
      throw new ConfigError([
        `pools: model file of pool '${pool.id}' is unreadable: ${(err as Error).message}`,
      ]);
    });
    if (pool.model.digest !== undefined && pool.model.digest !== digest) {
      throw new ConfigError([
        `pools: model of pool '${pool.id}' has digest ${digest}, but the config pins ${pool.model.digest}`,
      ]);
    }
    modelDigest = digest;
  } else {
    // vLLM, TGI and Triton load model directories; their digest is the configured one.
    binary = pool.launch.binaryPath ?? NATIVE_BINARIES[pool.engine];
  }
  return new EnginePoolSupervisor({
    pool,
    launcher: nativeLauncher({ pool, binary, modelDigest }),
    logger,
    onEvent,
  });
}

export async function startOrchestrator(
  config: ResolvedConfig,
  opts: StartOptions = {},
): Promise<RunningOrchestrator> {
  const logger = opts.logger ?? createLogger({ level: config.logging.level });
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
  const supervisors = new Map<string, PoolSupervisor>();
  for (const pool of config.pools)
    supervisors.set(pool.id, await createSupervisor(config, pool, logger, onProgress, metrics));
  const orchestrator = new Orchestrator({
    config,
    supervisors,
    metrics,
    logger,
    clock: opts.clock ?? systemClock,
    createSupervisor: (pool) => createSupervisor(config, pool, logger, onProgress, metrics),
  });
  const http = await createHttpServer({ config, orchestrator, metrics, logger });
  try {
    await http.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    await orchestrator.close(0);
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
    close: (drainMs = 5_000) =>
      (closing ??= (async () => {
        await orchestrator.close(drainMs);
        await http.close();
        // A reload may have replaced a pool's supervisor: stop the current ones.
        await Promise.all(orchestrator.pools.map((p) => p.supervisor.stop()));
        logger.info({ event: 'shutdown.complete' }, 'orchestratord stopped');
      })()),
  };
}
