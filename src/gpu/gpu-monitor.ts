/**
 * GPU detection at startup and telemetry while running (SPEC §5, §12): reads nvidia-smi, refuses
 * a prod orchestrator that would serve inference without NVIDIA GPUs (ORCH-1101), and exports
 * `gpu_utilization` per replica and device, and `vram_used_bytes` as the memory each replica's
 * own engine holds there. A failed read makes the telemetry stale: the gauges disappear until a
 * good reading, rather than repeating the last one as if it were current.
 */
import type { GpuDevice, ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import { ConfigError } from '../config/resolve-config.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { ReplicaView } from '../pool/replica.js';
import type { Logger } from '../util/logger.js';
import { procTable, type ProcessTable } from './engine-memory.js';
import { replicaMemory, type GpuSnapshot } from './gpu-snapshot.js';
import { findGpu, queryComputeApps, queryGpus, type ComputeApp, type GpuInfo } from './nvidia-smi.js';

/** What the telemetry loop labels: the replicas of each GPU pool, their devices and engines. */
export interface GpuConsumer {
  readonly engine: string;
  readonly engineVersion: string;
  readonly poolId: string;
  readonly replicas: readonly {
    readonly id: string;
    readonly devices: readonly GpuDevice[];
    /** Leader of the engine's process group while an engine runs. */
    readonly pid: number | undefined;
  }[];
}

export interface GpuMonitorOptions {
  readonly procs?: ProcessTable;
  readonly now?: () => number;
}

export class GpuMonitor {
  readonly #config: ResolvedConfig;
  readonly #logger: Logger;
  readonly #procs: ProcessTable;
  readonly #now: () => number;
  #gpus: GpuInfo[] | undefined;
  #apps: ComputeApp[] | undefined;
  #lastGoodMs = 0;
  #stale = false;
  #timer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  /** The read under way, and a fresh one asked for meanwhile (reads never overlap). */
  #inflight: Promise<boolean> | undefined;
  #queued: Promise<boolean> | undefined;

  constructor(config: ResolvedConfig, logger: Logger, opts: GpuMonitorOptions = {}) {
    this.#config = config;
    this.#logger = logger;
    this.#procs = opts.procs ?? procTable;
    this.#now = opts.now ?? Date.now;
  }

  /** The last good reading (possibly stale: see `snapshot()`); undefined when nvidia-smi never worked here. */
  get gpus(): readonly GpuInfo[] | undefined {
    return this.#gpus;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** The telemetry as it stands; undefined when no reading ever succeeded. */
  snapshot(): GpuSnapshot | undefined {
    if (this.#gpus === undefined) return undefined;
    return {
      gpus: this.#gpus,
      apps: this.#apps,
      stale: this.#stale,
      lastGoodMs: this.#lastGoodMs,
      error: this.#stale ? this.#lastError : undefined,
    };
  }

  /**
   * A reading taken after this call (the capacity planner wants memory as it is now, not as of
   * the last tick); callers arriving while one is queued share it.
   */
  async refresh(): Promise<GpuSnapshot | undefined> {
    if (this.#gpus === undefined) return undefined;
    if (this.#queued === undefined) {
      const after = this.#inflight ?? Promise.resolve(true);
      this.#queued = after.then(() => {
        this.#queued = undefined;
        return this.#read();
      });
    }
    await this.#queued;
    return this.snapshot();
  }

  /** One read at a time: on a loaded host nvidia-smi can take longer than the tick interval. */
  #read(): Promise<boolean> {
    this.#inflight ??= this.#query().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #query(): Promise<boolean> {
    const bin = this.#config.engines.nvidiaSmiPath;
    const [q, apps] = await Promise.all([queryGpus(bin), queryComputeApps(bin)]);
    if (!q.ok) {
      if (!this.#stale && this.#gpus !== undefined)
        this.#logger.warn(
          { event: 'gpu.telemetry_stale', err: q.error },
          `GPU telemetry stale: nvidia-smi failed (${q.error})`,
        );
      this.#lastError = q.error;
      this.#stale = true;
      return false;
    }
    if (this.#stale) this.#logger.info({ event: 'gpu.telemetry_current' }, 'GPU telemetry current again');
    this.#gpus = q.gpus;
    // Drivers without per-process accounting leave it unknown; the device reading still stands.
    this.#apps = apps.ok ? apps.apps : undefined;
    this.#lastGoodMs = this.#now();
    this.#stale = false;
    this.#lastError = undefined;
    return true;
  }

  /**
   * First reading; throws the ORCH-1101 refusal in prod when GPU pools of this host have no GPU
   * to run on. Simulated pools on GPU devices read telemetry too but need no GPU.
   */
  async detect(): Promise<void> {
    const local = this.#config.pools.filter((p) => p.devices !== 'cpu' && p.hosts.length === 0);
    if (local.length === 0) return;
    const gpuPools = local.filter((p) => p.launch.worker === 'native');
    const ok = await this.#read();
    const found = ok ? (this.#gpus?.length ?? 0) : 0;
    if (found > 0) {
      const g = this.#gpus ?? [];
      this.#logger.info(
        {
          event: 'gpu.detected',
          gpus: g.map((x) => ({
            index: x.index,
            uuid: x.uuid,
            pci_bus_id: x.pciBusId,
            name: x.name,
            driver: x.driverVersion,
          })),
        },
        `${found} NVIDIA GPU(s): ${g.map((x) => `${x.index}:${x.name}`).join(', ')}`,
      );
      return;
    }
    // Nothing usable: no telemetry at all (rather than an empty reading that would mark every
    // configured device missing).
    this.#gpus = undefined;
    const why = ok ? 'nvidia-smi lists no GPU' : `nvidia-smi failed: ${this.#lastError ?? 'unknown'}`;
    if (gpuPools.length === 0) {
      this.#logger.info({ event: 'gpu.none', reason: why }, `no GPU telemetry (${why})`);
      return;
    }
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
      // A read still under way (slow nvidia-smi) is this tick's read.
      await this.#read();
      this.#export(metrics, consumers());
    };
    void tick();
    this.#timer = setInterval(() => void tick(), this.#config.engines.telemetryIntervalMs);
    this.#timer.unref();
  }

  #export(metrics: OrchMetrics, consumers: readonly GpuConsumer[]): void {
    // Synchronous from reset to the last set: a scrape sees the old set or the new one, never half.
    metrics.reset('gpu_utilization');
    metrics.reset('vram_used_bytes');
    const snap = this.snapshot();
    if (snap === undefined || snap.stale) return;
    for (const c of consumers)
      for (const r of c.replicas) {
        const memory = replicaMemory(snap, r.devices, r.pid, this.#procs);
        for (const device of r.devices) {
          const g = findGpu(snap.gpus, device);
          if (!g) continue;
          const labels = {
            engine: c.engine,
            engine_version: c.engineVersion,
            pool_id: c.poolId,
            replica_id: r.id,
            device: String(device),
          };
          if (g.utilization !== undefined) metrics.set('gpu_utilization', labels, g.utilization);
          const bytes = memory?.get(String(device));
          if (bytes !== undefined) metrics.set('vram_used_bytes', labels, bytes);
        }
      }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** What the telemetry loop needs of a pool (`PoolRuntime` has it). */
export interface GpuPoolView {
  readonly id: string;
  readonly config: ResolvedPool;
  engineVersion(): string;
  readonly supervisor: { replicas(): readonly ReplicaView[] };
}

/**
 * The local GPU pools' replicas, each with its own devices and engine process. Remote pools are
 * left out: their GPUs are another host's, which that host's pool-managerd reads.
 */
export function gpuConsumers(pools: readonly GpuPoolView[]): GpuConsumer[] {
  return pools.flatMap((p) =>
    p.config.devices === 'cpu' || p.config.hosts.length > 0
      ? []
      : [
          {
            engine: p.config.engine,
            engineVersion: p.engineVersion(),
            poolId: p.id,
            replicas: p.supervisor
              .replicas()
              .flatMap((r) =>
                r.gpu === undefined ? [] : [{ id: r.id, devices: r.gpu.devices, pid: r.gpu.pid }],
              ),
          },
        ],
  );
}
