/**
 * The GPU part of a node's heartbeat: its last good reading with whether it is current, and for
 * each replica its devices and the memory its own engine holds there. The orchestrator shows a
 * remote pool's telemetry from these, never from its own nvidia-smi.
 */
import { replicaMemory, type GpuSnapshot } from '../gpu/gpu-snapshot.js';
import type { ReplicaView } from '../pool/replica.js';
import type { NodeReport, ReplicaReport } from './node-protocol.js';

export function nodeGpuReport(snap: GpuSnapshot | undefined): Pick<NodeReport, 'gpus' | 'gpu_state'> {
  if (snap === undefined) return {};
  return {
    gpus: snap.gpus,
    gpu_state: {
      stale: snap.stale,
      last_good_ms: snap.lastGoodMs,
      ...(snap.error === undefined ? {} : { error: snap.error }),
    },
  };
}

export function replicaGpuReport(
  snap: GpuSnapshot | undefined,
  r: ReplicaView,
): Pick<ReplicaReport, 'devices' | 'vram_used_bytes'> {
  if (r.gpu === undefined) return {};
  const memory = replicaMemory(snap, r.gpu.devices, r.gpu.pid);
  return {
    devices: r.gpu.devices,
    ...(memory === undefined ? {} : { vram_used_bytes: Object.fromEntries(memory) }),
  };
}
