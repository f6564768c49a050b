/**
 * GPU detection at startup and telemetry while running (SPEC §5, §12): reads nvidia-smi, refuses
 * a prod orchestrator that would serve inference without NVIDIA GPUs (ORCH-1101), and exports
 * `gpu_utilization` and `vram_used_bytes` per pool replica and device.
 */
import type { ResolvedConfig } from '../config/resolved-config.js';
import { ConfigError } from '../config/resolve-config.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { Logger } from '../util/logger.js';
import { queryGpus, type GpuInfo } from './nvidia-smi.js';

/** What the telemetry loop labels: the replicas of each GPU pool and their devices. */
export interface GpuConsumer {
  readonly engine: string;
  readonly engineVersion: string;
  readonly poolId: string;
  readonly replicaIds: readonly string[];
  readonly devices: readonly number[];
}

export class GpuMonitor {
  readonly #config: ResolvedConfig;
  readonly #logger: Logger;
  #gpus: GpuInfo[] | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;

  constructor(config: ResolvedConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  /** The latest successful reading; undefined when nvidia-smi is not usable here. */
  get gpus(): readonly GpuInfo[] | undefined {
    return this.#gpus;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** First reading; throws the ORCH-1101 refusal in prod when GPU pools have no GPU to run on. */
  async detect(): Promise<void> {
    const gpuPools = this.#config.pools.filter((p) => p.devices !== 'cpu' && p.launch.worker === 'native');
    if (gpuPools.length === 0) return;
    const q = await queryGpus(this.#config.engines.nvidiaSmiPath);
    if (q.ok) this.#gpus = q.gpus;
    else this.#lastError = q.error;
    const found = q.ok ? q.gpus.length : 0;
    if (found > 0) {
      const g = q.ok ? q.gpus : [];
      this.#logger.info(
        {
          event: 'gpu.detected',
          gpus: g.map((x) => ({ index: x.index, name: x.name, driver: x.driverVersion })),
        },
        `${found} NVIDIA GPU(s): ${g.map((x) => `${x.index}:${x.name}`).join(', ')}`,
      );
      return;
    }
    const why = q.ok ? 'nvidia-smi lists no GPU' : `nvidia-smi failed: ${q.error}`;
    if (this.#config.profile === 'prod') {
      throw new ConfigError([
        `gpu: pools ${gpuPools.map((p) => p.id).join(', ')} need NVIDIA GPUs but none is usable on this host (${why}); ` +
          'the prod profile serves inference only on NVIDIA GPUs (ORCH-1101)',
      ]);
    }
    this.#logger.warn(
      { event: 'gpu.none', reason: why },
      `DEV PROFILE: no NVIDIA GPU usable (${why}); engines may fall back to CPU`,
    );
  }

  /** Starts periodic telemetry for the pools `consumers()` returns. */
  start(metrics: OrchMetrics, consumers: () => readonly GpuConsumer[]): void {
    if (this.#gpus === undefined) return;
    const tick = async () => {
      const q = await queryGpus(this.#config.engines.nvidiaSmiPath);
      if (!q.ok) {
        this.#lastError = q.error;
        return;
      }
      this.#gpus = q.gpus;
      for (const c of consumers())
        for (const device of c.devices) {
          const g = q.gpus.find((x) => x.index === device);
          if (!g) continue;
          for (const replica of c.replicaIds) {
            const labels = {
              engine: c.engine,
              engine_version: c.engineVersion,
              pool_id: c.poolId,
              replica_id: replica,
              device: String(device),
            };
            if (g.utilization !== undefined) metrics.set('gpu_utilization', labels, g.utilization);
            metrics.set('vram_used_bytes', labels, g.memoryUsedBytes);
          }
        }
    };
    void tick();
    this.#timer = setInterval(() => void tick(), this.#config.engines.telemetryIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
