/** `text-generation-launcher` (TGI launcher arguments). */
import type { ResolvedPool } from '../../config/resolved-config.js';
import { replicaGpuCount } from '../replica-gpus.js';

export function tgiArgs(pool: ResolvedPool, port: number, replicaIndex = 0): string[] {
  const l = pool.launch;
  return [
    '--model-id',
    pool.model.path,
    '--hostname',
    l.host,
    '--port',
    String(port),
    '--max-total-tokens',
    String(pool.ctx),
    '--max-input-tokens',
    String(pool.ctx - 1),
    '--max-concurrent-requests',
    String(l.parallel),
    '--num-shard',
    String(replicaGpuCount(pool, replicaIndex)),
    ...l.extraArgs,
  ];
}
