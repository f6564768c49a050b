/** From a pool's configuration to its supervisor: engine binaries, model digests, headroom. */
import { freemem } from 'node:os';
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import type { GpuInfo } from '../gpu/nvidia-smi.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import { sha256File } from '../util/sha256-file.js';
import { nativeLauncher, simLauncher } from './engine-launcher.js';
import { EnginePoolSupervisor, type SupervisorEvent } from './engine-supervisor.js';
import { capacityGate, type CapacityPlanner } from './capacity-planner.js';
import { checkHeadroom, estimateMemory } from './headroom.js';
import type { GpuSnapshot } from '../gpu/gpu-snapshot.js';
import { runDirOf } from './run-files.js';
import type { PoolSupervisor } from './replica.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { preparationFor, type ModelPreparation } from '../catalog/model-preparation.js';

export { sha256File };

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
  /** The trust check every load goes through (a node's own; else the catalog's). */
  readonly preparation?: ModelPreparation | undefined;
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
  // Every load is prepared (catalog ids resolved) and verified before launch (model-preparation.ts).
  const preparation = preparationFor(o);
  const prepared = await preparation.resolve(configured);
  const { pool, entry } = prepared;
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
      preflight: () => preparation.verify(prepared),
      // A simulated engine holds no GPU memory: it is planned only when the pool rehearses that.
      ...(pool.launch.sim.planGpu ? gpuOptions(o, pool) : { gpuTelemetry: gpuOptions(o, pool).gpuTelemetry }),
    });
  }
  const driver = ENGINE_DRIVERS[pool.engine];
  const { binary, verifyStartup } = await driver.provision({
    pool,
    config,
    logger,
    onProgress,
    gpuCount: () => o.gpus()?.length ?? 0,
    onRefused: (reason) =>
      metrics.inc('engine_failures_total', { engine: pool.engine, pool_id: pool.id, reason }),
  });
  const modelDigest = await driver.modelDigest({ pool, fromCatalog: entry !== undefined });
  return new EnginePoolSupervisor({
    pool,
    launcher: nativeLauncher({ pool, binary, modelDigest }),
    logger,
    onEvent,
    runDir: runDirOf(config.dataDir),
    verifyOffload: verifyStartup,
    ...gpuOptions(o, pool),
    preflight: async () => {
      const untrusted = await preparation.verify(prepared);
      if (untrusted !== undefined) return untrusted;
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
