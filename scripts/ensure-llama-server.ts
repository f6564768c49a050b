/**
 * CI and first-run helper: prints the llama-server path, building the pinned version if needed.
 * It builds the CPU variant (the cache entry CI keeps) unless `LLORCH_LLAMA_BUILD` asks for `cuda`,
 * or for `auto` (CUDA when nvcc and a GPU are found).
 */
import {
  BUILD_ENV,
  buildOf,
  chooseLlamaBuild,
  type BuildChoice,
  defaultCacheDir,
  llamaServerVersion,
  parseBuildSetting,
  provisionLlamaServer,
} from '../src/engines/llamacpp/provision.js';
import { queryGpus } from '../src/gpu/nvidia-smi.js';

const choice: BuildChoice =
  parseBuildSetting(process.env[BUILD_ENV], BUILD_ENV) === undefined
    ? {
        variant: 'cpu',
        forced: true,
        reason: `the default here (set ${BUILD_ENV} for another)`,
        nvcc: undefined,
        gpus: 0,
      }
    : await chooseLlamaBuild({
        gpuCount: async () => {
          const q = await queryGpus('nvidia-smi');
          return q.ok ? q.gpus.length : 0;
        },
      });
const server = await provisionLlamaServer({
  cacheDir: defaultCacheDir(),
  choice,
  onProgress: (line) => process.stderr.write(`llama-server: ${line}\n`),
});
process.stderr.write(
  `llama-server ${await llamaServerVersion(server.path)} (${await buildOf(server.path)} build, ${server.origin}; ${choice.reason})\n`,
);
process.stdout.write(`${server.path}\n`);
