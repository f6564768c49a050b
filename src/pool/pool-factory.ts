/** From a pool's configuration to its supervisor: engine binaries, model digests, headroom. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { freemem } from 'node:os';
import { ConfigError } from '../config/resolve-config.js';
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import { llamaOffloadCheck, type OffloadCheck } from '../engines/llamacpp/offload-report.js';
import { chooseLlamaBuild, provisionLlamaServer } from '../engines/llamacpp/provision.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import { NATIVE_BINARIES, nativeLauncher, simLauncher } from './engine-launcher.js';
import { EnginePoolSupervisor, type SupervisorEvent } from './engine-supervisor.js';
import { capacityGate, type CapacityPlanner } from './capacity-planner.js';
import { checkHeadroom, estimateMemory } from './headroom.js';
import type { GpuSnapshot } from '../gpu/gpu-snapshot.js';
import { runDirOf } from './run-files.js';
import type { PoolSupervisor } from './replica.js';
import type { CatalogService } from '../catalog/catalog-service.js';

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

export interface PoolFactoryOptions {
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  readonly onProgress: (line: string) => void;
  readonly metrics: OrchMetrics;
  /** GPUs of this host (nvidia-smi), for headroom checks; undefined when unknown. */
  readonly gpus: () => readonly GpuInfo[] | undefined;
  /** The model catalog: pools whose model id is an entry serve its verified file. */
  readonly catalog?: CatalogService | undefined;
  /**
   * The host's capacity planner, shared by every pool of this process: GPU replicas reserve
   * memory before they load. Without it, GPU pools get a per-pool headroom check only.
   */
  readonly planner?: CapacityPlanner | undefined;
  /** This host's GPU telemetry as it stands (pool health). */
  readonly gpuTelemetry?: (() => GpuSnapshot | undefined) | undefined;
}

/** The supervisor options every local pool gets for GPU capacity and telemetry. */
function gpuOptions(o: PoolFactoryOptions, pool: ResolvedPool) {
  const telemetry = o.gpuTelemetry;
  return {
    capacity:
      o.planner === undefined || pool.devices === 'cpu'
        ? undefined
        : capacityGate(o.planner, pool, () =>
            o.metrics.inc('engine_failures_total', {
              engine: pool.engine,
              pool_id: pool.id,
              reason: 'headroom',
            }),
          ),
    gpuTelemetry:
      telemetry === undefined || pool.devices === 'cpu'
        ? undefined
        : () => ({ host: undefined, snapshot: telemetry() }),
  };
}

/**
 * Builds the supervisor of a pool: provisions the engine binary, pins the model digest, and
 * checks headroom before anything loads.
 */
export async function createSupervisor(
  o: PoolFactoryOptions,
  configured: ResolvedPool,
): Promise<PoolSupervisor> {
  const { config, logger, onProgress, metrics } = o;
  let pool = configured;
  // A pool that names its model by catalog id (no path) serves that entry's file, verified before load.
  // `tag:<tag>` resolves once, deterministically, to one entry whose digest the pool then pins.
  const entry =
    pool.launch.worker === 'native' && pool.model.path === ''
      ? pool.model.id.startsWith('tag:')
        ? await o.catalog?.resolveRef(pool.model.id)
        : await o.catalog?.find(pool.model.id)
      : undefined;
  if (entry && pool.model.id.startsWith('tag:'))
    logger.info(
      {
        event: 'catalog.resolved',
        pool_id: pool.id,
        ref: pool.model.id,
        model_id: entry.id,
        digest: entry.digest,
      },
      `pool ${pool.id}: ${pool.model.id} resolved to ${entry.id}@${entry.digest}`,
    );
  if (entry) {
    if (entry.state === 'Retired')
      throw new ConfigError([
        `pools: pool '${pool.id}' serves catalog model '${entry.id}', which is Retired`,
      ]);
    pool = { ...pool, model: { ...pool.model, path: entry.path, digest: entry.digest } };
  } else if (pool.launch.worker === 'native' && pool.model.path === '') {
    throw new ConfigError([
      `pools: pool '${pool.id}' names no model.path and the catalog has no model '${pool.model.id}'`,
    ]);
  }
  const onEvent = eventsToMetrics(metrics, pool);
  if (pool.launch.worker === 'sim') {
    logger.warn(
      { event: 'pool.simulated', pool_id: pool.id, engine: pool.engine },
      `pool '${pool.id}' runs SIMULATED ${pool.engine} replicas (launch.worker: sim): no real inference`,
    );
    return new EnginePoolSupervisor({
      pool,
      launcher: simLauncher(pool),
      logger,
      onEvent,
      runDir: runDirOf(config.dataDir),
      // A simulated engine holds no GPU memory: it is planned only when the pool rehearses that.
      ...(pool.launch.sim.planGpu ? gpuOptions(o, pool) : { gpuTelemetry: gpuOptions(o, pool).gpuTelemetry }),
    });
  }
  let binary: string;
  let verifyOffload: OffloadCheck | undefined;
  let modelDigest = pool.model.digest;
  if (pool.engine === 'llamacpp') {
    const server = await provisionLlamaServer({
      explicitPath: pool.launch.binaryPath ?? config.engines.llamaServerPath,
      cacheDir: config.engines.cacheDir,
      onProgress,
      choice: await chooseLlamaBuild({
        setting: config.engines.llamaBuild,
        cpuPool: pool.devices === 'cpu',
        gpuCount: () => o.gpus()?.length ?? 0,
      }),
      preferCached: config.profile === 'dev',
    });
    binary = server.path;
    logger.info(
      { event: 'engine.binary', pool_id: pool.id, binary, build: server.build, origin: server.origin },
      `pool ${pool.id}: llama-server ${binary} (${server.build} build, ${server.origin}` +
        `${server.reason === undefined ? '' : `: ${server.reason}`})`,
    );
    verifyOffload = llamaOffloadCheck({
      pool,
      profile: config.profile,
      binary,
      build: server.build,
      logger,
      onRefused: () =>
        metrics.inc('engine_failures_total', {
          engine: pool.engine,
          pool_id: pool.id,
          reason: 'gpu_offload',
        }),
    });
    const digest = await sha256File(pool.model.path).catch((err: unknown) => {
      throw new ConfigError([
        `pools: model file of pool '${pool.id}' is unreadable: ${(err as Error).message}`,
      ]);
    });
    // Catalog models are checked by the preflight (the pool stays unready; nothing else stops).
    if (!entry && pool.model.digest !== undefined && pool.model.digest !== digest) {
      throw new ConfigError([
        `pools: model of pool '${pool.id}' has digest ${digest}, but the config pins ${pool.model.digest}`,
      ]);
    }
    modelDigest = entry ? entry.digest : digest;
  } else {
    // vLLM, TGI and Triton load model directories; their digest is the configured one.
    binary = pool.launch.binaryPath ?? NATIVE_BINARIES[pool.engine];
  }
  return new EnginePoolSupervisor({
    pool,
    launcher: nativeLauncher({ pool, binary, modelDigest }),
    logger,
    onEvent,
    runDir: runDirOf(config.dataDir),
    verifyOffload,
    ...gpuOptions(o, pool),
    preflight: async () => {
      if (entry && o.catalog) {
        const v = await o.catalog.verify(entry.id);
        if (!v.ok) {
          const cause = `catalog: model '${entry.id}' failed verification before load (${v.reason})`;
          if (o.catalog.trustPolicy === 'strict') return cause;
          logger.warn(
            { event: 'catalog.permissive_load', pool_id: pool.id, reason: v.reason },
            `${cause}; loading anyway (permissive)`,
          );
        }
      }
      // GPU replicas are planned one by one, across pools, before each loads (capacity planner).
      if (pool.devices !== 'cpu' && o.planner !== undefined) return undefined;
      const est = await estimateMemory(pool);
      const cause = checkHeadroom(pool, est, o.gpus(), freemem());
      if (cause !== undefined)
        metrics.inc('engine_failures_total', { engine: pool.engine, pool_id: pool.id, reason: 'headroom' });
      return cause;
    },
  });
}
