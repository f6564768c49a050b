/** The shared conformance suite against the real llama-server (the pinned build, the tiny model). */
import { llamaServerVersion } from '../../src/engines/llamacpp/provision.js';
import { requireLlamaServer, tinyModelPath, tinyPool } from '../support/harness.js';
import { adapterConformance } from './adapter-suite.js';

adapterConformance({
  title: 'llama.cpp (real llama-server)',
  pool: async () => {
    const base = tinyPool('conf-llamacpp', await tinyModelPath());
    return { ...base, launch: { ...base.launch, parallel: 2 } };
  },
  // The tiny model loads in milliseconds: too fast to catch the 503 "Loading model" reliably.
  loadingHealth: 'not-observed',
  props: {
    engineVersion: async () => llamaServerVersion(await requireLlamaServer()),
    // The tiny pool runs `--no-cont-batching` and no `--embeddings`.
    features: { continuousBatching: false, interruptibleDecode: false, embeddings: false },
  },
  nativeMetric: 'llamacpp:prompt_tokens_total',
});
