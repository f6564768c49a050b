/**
 * One host's GPU telemetry as it stands: the last good nvidia-smi reading and whether it is
 * still current. A failed read never turns the previous reading into a current one (SPEC §5:
 * absent GPUs are reported as such, never faked).
 */
import type { GpuDevice } from '../config/resolved-config.js';
import { appsVisible, engineMemoryOn, procTable, type ProcessTable } from './engine-memory.js';
import { findGpu, type ComputeApp, type GpuInfo } from './nvidia-smi.js';

export interface GpuSnapshot {
  /** The last good reading. */
  readonly gpus: readonly GpuInfo[];
  /** Compute processes of that reading; undefined where nvidia-smi could not list them. */
  readonly apps: readonly ComputeApp[] | undefined;
  /** True when the latest read failed: `gpus` is older than the read interval. */
  readonly stale: boolean;
  /** When the last good reading was taken (epoch ms). */
  readonly lastGoodMs: number;
  /** Why the latest read failed (stale only). */
  readonly error: string | undefined;
}

/**
 * The memory a replica's engine holds on each of its devices (by the device as configured),
 * from nvidia-smi's per-process list; devices where nothing of it is listed are left out, and
 * the result is undefined when nothing is known (no pid, no process list, a stale reading).
 */
export function replicaMemory(
  snap: GpuSnapshot | undefined,
  devices: readonly GpuDevice[],
  leaderPid: number | undefined,
  procs: ProcessTable = procTable,
): ReadonlyMap<string, number> | undefined {
  if (snap === undefined || snap.stale || snap.apps === undefined || leaderPid === undefined)
    return undefined;
  const out = new Map<string, number>();
  for (const d of devices) {
    const g = findGpu(snap.gpus, d);
    if (!g) continue;
    const bytes = engineMemoryOn(snap.apps, leaderPid, g.uuid, procs);
    if (bytes !== undefined) out.set(String(d), bytes);
  }
  return out.size === 0 ? undefined : out;
}

/** Whether the reading's process list can be matched against this host's pids. */
export function attributable(snap: GpuSnapshot, procs: ProcessTable = procTable): boolean {
  return snap.apps !== undefined && appsVisible(snap.apps, procs);
}
