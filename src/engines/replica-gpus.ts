/** The GPUs one replica of a pool runs on, as every engine's launch needs them. */
import type { ResolvedPool } from '../config/resolved-config.js';

/** The device mask of one replica (`replica_devices`, else the pool's `devices`). */
export function replicaMask(pool: ResolvedPool, replicaIndex: number): ResolvedPool['devices'] {
  return pool.replicaDevices[replicaIndex] ?? pool.devices;
}

/** GPUs of one replica: its tensor-parallel size (1 on CPU). */
export function replicaGpuCount(pool: ResolvedPool, replicaIndex: number): number {
  const mask = replicaMask(pool, replicaIndex);
  return mask === 'cpu' ? 1 : mask.length;
}
