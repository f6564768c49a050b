/** Hugging Face TGI (`text-generation-launcher`): an HF model directory, the configured binary and digest. */
import {
  adapterConnections,
  configuredBinary,
  configuredDigest,
  type EngineDriver,
} from '../engine-driver.js';
import { TgiAdapter } from './adapter.js';
import { tgiArgs } from './launch-args.js';

export const tgiDriver: EngineDriver<'tgi'> = {
  engine: 'tgi',
  displayName: 'TGI',
  nativeBinary: 'text-generation-launcher',
  portCount: { native: 1, sim: 1 },
  // `--api-key` "[env: API_KEY=]" (text-generation-launcher arguments, since v2.3.0,
  // huggingface/text-generation-inference#2315). It guards only the generation routes;
  // `/tokenize` is the cheapest of them.
  apiKey: {
    env: 'API_KEY',
    probe: { method: 'POST', path: '/tokenize', body: JSON.stringify({ inputs: '' }) },
  },
  fields: {
    tensor_split: { refused: 'shards every layer evenly over the visible GPUs (--num-shard)' },
    'launch.gpu_memory_utilization': { refused: 'sizes its memory from the model and ctx' },
    'launch.embeddings': { refused: 'has no embeddings API (text-embeddings-inference is another server)' },
  },
  validatePool: () => [],
  resolveLaunch: () => ({ gpuMemoryUtilization: undefined }),
  nativeArgs: (pool, ports, replicaIndex) => tgiArgs(pool, ports[0] ?? 0, replicaIndex),
  simArgs: () => [],
  createAdapter: (pool, urls, modelDigest) =>
    new TgiAdapter({
      baseUrl: urls.base,
      modelDigest,
      connections: adapterConnections(pool),
      apiKey: pool.launch.apiKey,
    }),
  // TGI exports no KV-cache usage gauge.
  metrics: { family: /^tgi_/, kvUsage: () => undefined },
  provision: configuredBinary('text-generation-launcher'),
  modelDigest: configuredDigest,
};
