/**
 * The GPU part of a pool's health (SPEC §5, §6): the devices it runs on, read on the host that
 * runs them (this host's nvidia-smi, or a remote pool's nodes' heartbeats), flagged stale when
 * the latest read failed; configured devices the host does not have are listed as missing rather
 * than dropped; each replica's own engine memory where nvidia-smi reports it.
 */
import type { GpuDevice, ResolvedPool } from '../config/resolved-config.js';
import type { HostGpuTelemetry, ReplicaView } from '../pool/replica.js';
import { replicaMemory } from './gpu-snapshot.js';
import { findGpu, type GpuInfo } from './nvidia-smi.js';

export interface DeviceTelemetry {
  readonly index: number;
  readonly uuid: string;
  readonly pci_bus_id?: string;
  readonly name: string;
  readonly driver_version: string;
  readonly memory_total_bytes: number;
  readonly memory_used_bytes: number;
  readonly memory_free_bytes: number;
  readonly utilization?: number;
  readonly temperature_c?: number;
  readonly ecc_uncorrected?: number;
  /** The node whose GPU this is (remote pools). */
  readonly host?: string;
}

export interface PoolGpuTelemetry {
  /** True when a read failed after the last good one: the values below are that old. */
  readonly stale: boolean;
  /** When the oldest of the readings shown was taken (epoch ms). */
  readonly last_good_ms: number;
  readonly error?: string;
  readonly devices: readonly DeviceTelemetry[];
  /** Configured devices that nvidia-smi does not list on their host. */
  readonly missing_devices: readonly { readonly device: string; readonly host?: string }[];
}

/** Per-replica GPU facts for the replica entries of pool health. */
export interface ReplicaGpuTelemetry {
  readonly devices: readonly string[];
  readonly host?: string;
  /** Its engine's own memory over its devices; absent where nvidia-smi lists none of it. */
  readonly vram_used_bytes?: number;
}

function device(g: GpuInfo, host: string | undefined): DeviceTelemetry {
  return {
    index: g.index,
    uuid: g.uuid,
    ...(g.pciBusId === undefined ? {} : { pci_bus_id: g.pciBusId }),
    name: g.name,
    driver_version: g.driverVersion,
    memory_total_bytes: g.memoryTotalBytes,
    memory_used_bytes: g.memoryUsedBytes,
    memory_free_bytes: g.memoryFreeBytes,
    ...(g.utilization === undefined ? {} : { utilization: g.utilization }),
    ...(g.temperatureC === undefined ? {} : { temperature_c: g.temperatureC }),
    ...(g.eccUncorrected === undefined ? {} : { ecc_uncorrected: g.eccUncorrected }),
    ...(host === undefined ? {} : { host }),
  };
}

/** The pool's device telemetry; undefined for CPU pools and hosts without any GPU reading. */
export function poolGpuTelemetry(
  pool: ResolvedPool,
  replicas: readonly ReplicaView[],
  hosts: readonly HostGpuTelemetry[],
): PoolGpuTelemetry | undefined {
  if (pool.devices === 'cpu') return undefined;
  const configured = pool.devices;
  const read = hosts.flatMap((h) => (h.snapshot === undefined ? [] : [{ host: h.host, snap: h.snapshot }]));
  if (read.length === 0) return undefined;
  const devices: DeviceTelemetry[] = [];
  const missing: { device: string; host?: string }[] = [];
  for (const { host, snap } of read) {
    // A remote node says which devices its replicas run on; otherwise the pool's configuration does.
    const reported = replicas.filter((r) => r.gpu?.host === host).flatMap((r) => r.gpu?.devices ?? []);
    const wanted: GpuDevice[] = reported.length > 0 ? [...new Set(reported)] : [...configured];
    const seen = new Set<string>();
    for (const d of wanted) {
      const g = findGpu(snap.gpus, d);
      if (!g) {
        missing.push({ device: String(d), ...(host === undefined ? {} : { host }) });
        continue;
      }
      // Index and UUID may name the same GPU.
      if (seen.has(g.uuid)) continue;
      seen.add(g.uuid);
      devices.push(device(g, host));
    }
  }
  const errors = read.flatMap(({ host, snap }) =>
    snap.stale && snap.error !== undefined
      ? [host === undefined ? snap.error : `${host}: ${snap.error}`]
      : [],
  );
  return {
    stale: read.some(({ snap }) => snap.stale),
    last_good_ms: Math.min(...read.map(({ snap }) => snap.lastGoodMs)),
    ...(errors.length === 0 ? {} : { error: errors.join('; ') }),
    devices,
    missing_devices: missing,
  };
}

/** A replica's devices and own engine memory (local: this host's reading; remote: its node's). */
export function replicaGpuTelemetry(
  r: ReplicaView,
  hosts: readonly HostGpuTelemetry[],
): ReplicaGpuTelemetry | undefined {
  const gpu = r.gpu;
  if (gpu === undefined) return undefined;
  const memory =
    gpu.host === undefined
      ? replicaMemory(hosts.find((h) => h.host === undefined)?.snapshot, gpu.devices, gpu.pid)
      : gpu.memoryBytes;
  const bytes =
    memory === undefined || memory.size === 0 ? undefined : [...memory.values()].reduce((a, b) => a + b, 0);
  return {
    devices: gpu.devices.map(String),
    ...(gpu.host === undefined ? {} : { host: gpu.host }),
    ...(bytes === undefined ? {} : { vram_used_bytes: bytes }),
  };
}
