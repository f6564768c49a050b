/** llama.cpp's `llama-server`: a GGUF file, a binary found or built from the pinned source. */
import { ConfigError } from '../../config/config-error.js';
import { sha256File } from '../../util/sha256-file.js';
import { adapterConnections, gaugeValue, type EngineDriver } from '../engine-driver.js';
import { LlamaCppAdapter } from './adapter.js';
import { llamaServerArgs } from './launch-args.js';
import { launchFlags } from './launch-flags.js';
import { llamaOffloadCheck } from './offload-report.js';
import { chooseLlamaBuild, provisionLlamaServer } from './provision.js';
import { validateLlamaCppPool } from './validate-pool.js';

/**
 * Older llama-server builds exported this gauge; the pinned one does not (its `/metrics`:
 * test/fixtures/llamacpp/metrics.txt), so the adapter reads KV usage from `/slots` (`kvUsage`)
 * and this is only the fallback when `/slots` is off.
 */
const KV_USAGE = /^llamacpp:kv_cache_usage_ratio(?:\{[^}]*\})?\s+(\S+)/m;

export const llamacppDriver: EngineDriver<'llamacpp'> = {
  engine: 'llamacpp',
  displayName: 'llama.cpp',
  nativeBinary: 'llama-server',
  portCount: { native: 1, sim: 1 },
  // `--api-key` "(env: LLAMA_API_KEY)" in `llama-server --help` (the pinned build, and upstream
  // common/arg.cpp). `/props` needs the key; `/health` does not.
  apiKey: { env: 'LLAMA_API_KEY', probe: { method: 'GET', path: '/props' } },
  fields: {
    tensor_split: { honoured: '--tensor-split' },
    'launch.gpu_memory_utilization': { refused: 'sizes its memory from the model and ctx' },
    'launch.embeddings': { honoured: '--embeddings [--pooling]' },
  },
  validatePool: validateLlamaCppPool,
  resolveLaunch: () => ({ gpuMemoryUtilization: undefined }),
  nativeArgs: (pool, ports) => llamaServerArgs(pool, ports[0] ?? 0),
  // The simulator takes llama-server's own embeddings flags.
  simArgs: (pool) =>
    pool.launch.embeddings
      ? ['--embeddings', ...(pool.launch.pooling === undefined ? [] : ['--pooling', pool.launch.pooling])]
      : [],
  createAdapter: (pool, urls, modelDigest) =>
    new LlamaCppAdapter({
      baseUrl: urls.base,
      modelDigest,
      connections: adapterConnections(pool),
      apiKey: pool.launch.apiKey,
      // What the command line decided and the server does not report (continuous batching).
      ...launchFlags(llamaServerArgs(pool, 0)),
    }),
  metrics: { family: /^llamacpp:/, kvUsage: (scrape) => gaugeValue(KV_USAGE, scrape) },

  async provision({ pool, config, logger, onProgress, gpuCount, onRefused }) {
    const server = await provisionLlamaServer({
      explicitPath: pool.launch.binaryPath ?? config.engines.llamaServerPath,
      cacheDir: config.engines.cacheDir,
      onProgress,
      choice: await chooseLlamaBuild({
        setting: config.engines.llamaBuild,
        cpuPool: pool.devices === 'cpu',
        gpuCount,
      }),
      preferCached: config.profile === 'dev',
    });
    const binary = server.path;
    logger.info(
      { event: 'engine.binary', pool_id: pool.id, binary, build: server.build, origin: server.origin },
      `pool ${pool.id}: llama-server ${binary} (${server.build} build, ${server.origin}` +
        `${server.reason === undefined ? '' : `: ${server.reason}`})`,
    );
    const verifyStartup = llamaOffloadCheck({
      pool,
      profile: config.profile,
      binary,
      build: server.build,
      logger,
      onRefused: () => onRefused('gpu_offload'),
    });
    return { binary, verifyStartup };
  },

  /** The GGUF file's own digest; a configured pin it contradicts is a config error. */
  async modelDigest({ pool, fromCatalog }) {
    const digest = await sha256File(pool.model.path).catch((err: unknown) => {
      throw new ConfigError([
        `pools: model file of pool '${pool.id}' is unreadable: ${(err as Error).message}`,
      ]);
    });
    // Catalog models are checked by the preflight (the pool stays unready; nothing else stops).
    if (fromCatalog) return pool.model.digest;
    if (pool.model.digest !== undefined && pool.model.digest !== digest) {
      throw new ConfigError([
        `pools: model of pool '${pool.id}' has digest ${digest}, but the config pins ${pool.model.digest}`,
      ]);
    }
    return digest;
  },
};
