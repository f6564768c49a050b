/** CI and first-run helper: prints the llama-server path, building the pinned version if needed. */
import { defaultCacheDir, ensureLlamaServer, llamaServerVersion } from '../src/engines/llamacpp/provision.js';

const binary = await ensureLlamaServer({
  cacheDir: defaultCacheDir(),
  onProgress: (line) => process.stderr.write(`llama-server: ${line}\n`),
});
process.stderr.write(`llama-server ${await llamaServerVersion(binary)}\n`);
process.stdout.write(`${binary}\n`);
