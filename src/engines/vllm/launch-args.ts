/** `vllm serve` (docs.vllm.ai "vllm serve" CLI arguments). */
import type { ResolvedPool } from '../../config/resolved-config.js';
import { replicaGpuCount } from '../replica-gpus.js';

export function vllmArgs(pool: ResolvedPool, port: number, replicaIndex = 0): string[] {
  const l = pool.launch;
  const args = ['serve', pool.model.path, '--host', l.host, '--port', String(port)];
  args.push('--served-model-name', pool.model.id, '--max-model-len', String(pool.ctx));
  args.push(
    '--max-num-seqs',
    String(l.parallel),
    '--tensor-parallel-size',
    String(replicaGpuCount(pool, replicaIndex)),
    '--seed',
    '0',
  );
  // Explicit, so the capacity planner reserves what the engine takes whatever vLLM's default.
  if (l.gpuMemoryUtilization !== undefined)
    args.push('--gpu-memory-utilization', String(l.gpuMemoryUtilization));
  // The API key travels as VLLM_API_KEY (engineEnv), not on the command line.
  return [...args, ...l.extraArgs];
}
