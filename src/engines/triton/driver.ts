/**
 * Triton Inference Server with TensorRT-LLM (`tritonserver`): a model repository, the
 * configured binary and digest, metrics on a port of their own.
 */
import {
  adapterConnections,
  configuredBinary,
  configuredDigest,
  gaugeValue,
  type EngineDriver,
} from '../engine-driver.js';
import { TritonAdapter } from './adapter.js';
import { tritonArgs } from './launch-args.js';
import { tritonSimArgs } from './sim-args.js';

const KV_USAGE = /^nv_trt_llm_kv_cache_block_metrics\{[^}]*kv_cache_block_type="fraction"[^}]*\}\s+(\S+)/m;

export const tritonDriver: EngineDriver<'triton'> = {
  engine: 'triton',
  displayName: 'Triton',
  nativeBinary: 'tritonserver',
  // HTTP, metrics and gRPC; the simulator serves no gRPC.
  portCount: { native: 3, sim: 2 },
  // None in `tritonserver --help` (its BETA `--http-restricted-api` takes the secret on the
  // command line): beyond loopback only pool-managerd's guard puts a key in front of it.
  apiKey: undefined,
  fields: {
    tensor_split: {
      refused: 'runs TensorRT-LLM engines whose tensor parallelism is fixed when the engine is built',
    },
    'launch.gpu_memory_utilization': { refused: 'sizes its memory from the model and ctx' },
    'launch.embeddings': { refused: 'serves what its model repository declares' },
  },
  validatePool: () => [],
  resolveLaunch: () => ({ gpuMemoryUtilization: undefined }),
  nativeArgs: (pool, ports) => tritonArgs(pool, ports),
  simArgs: (pool, ports) => tritonSimArgs(pool, ports),
  createAdapter: (pool, urls, modelDigest) =>
    new TritonAdapter({
      baseUrl: urls.base,
      metricsUrl: urls.metrics ?? urls.base,
      ctx: pool.ctx,
      models: pool.launch.triton,
      modelDigest,
      connections: adapterConnections(pool),
      // Triton itself takes no key: this is the key of pool-managerd's guard in front of it.
      apiKey: pool.launch.apiKey,
    }),
  metrics: { family: /^nv_/, kvUsage: (scrape) => gaugeValue(KV_USAGE, scrape) },
  provision: configuredBinary('tritonserver'),
  modelDigest: configuredDigest,
};
