/** vLLM (`vllm serve`): an HF model directory, the configured binary and digest. */
import { DEFAULTS } from '../../config/schema.js';
import {
  adapterConnections,
  configuredBinary,
  configuredDigest,
  gaugeValue,
  type EngineDriver,
} from '../engine-driver.js';
import { VllmAdapter } from './adapter.js';
import { vllmArgs, vllmPoolingByArgs, vllmToolCalling } from './launch-args.js';

// vLLM renamed its KV gauge from `gpu_cache_usage_perc` to `kv_cache_usage_perc` (both 0..1).
const KV_USAGE = /^vllm:(?:gpu_cache_usage_perc|kv_cache_usage_perc)(?:\{[^}]*\})?\s+(\S+)/m;

export const vllmDriver: EngineDriver<'vllm'> = {
  engine: 'vllm',
  displayName: 'vLLM',
  nativeBinary: 'vllm',
  portCount: { native: 1, sim: 1 },
  // "the argument `--api-key` or environment variable `VLLM_API_KEY`" (docs.vllm.ai,
  // OpenAI-Compatible Server); it guards `/v1/*` only.
  apiKey: { env: 'VLLM_API_KEY', probe: { method: 'GET', path: '/v1/models' } },
  fields: {
    tensor_split: {
      refused: 'shards every layer evenly over the visible GPUs (--tensor-parallel-size)',
    },
    'launch.gpu_memory_utilization': { honoured: '--gpu-memory-utilization' },
    'launch.embeddings': { refused: 'decides from the model whether it serves embeddings' },
  },
  validatePool: () => [],
  // Always set, so the capacity planner reserves what the engine takes whatever vLLM's default.
  resolveLaunch: (p) => ({
    gpuMemoryUtilization: p.launch?.gpu_memory_utilization ?? DEFAULTS.vllmGpuMemoryUtilization,
  }),
  nativeArgs: (pool, ports, replicaIndex) => vllmArgs(pool, ports[0] ?? 0, replicaIndex),
  simArgs: () => [],
  createAdapter: (pool, urls, modelDigest) =>
    new VllmAdapter({
      baseUrl: urls.base,
      model: pool.model.id,
      apiKey: pool.launch.apiKey,
      slots: pool.launch.parallel,
      modelDigest,
      connections: adapterConnections(pool),
      // What the engine's own flags allow; the simulator takes the same flags (engine-launcher).
      toolCalling: vllmToolCalling(pool.launch.extraArgs),
      pooling: vllmPoolingByArgs(pool.launch.extraArgs),
    }),
  metrics: { family: /^vllm:/, kvUsage: (scrape) => gaugeValue(KV_USAGE, scrape) },
  provision: configuredBinary('vllm'),
  modelDigest: configuredDigest,
};
