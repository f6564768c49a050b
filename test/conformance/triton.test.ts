/** The shared conformance suite against the simulator's Triton / TensorRT-LLM dialect. */
import { simPool } from '../support/harness.js';
import { adapterConformance } from './adapter-suite.js';

adapterConformance({
  title: 'Triton / TensorRT-LLM (simulated)',
  pool: () => simPool('conf-triton', 'triton', { sim: { tokens_per_s: 400, load_ms: 400 } }),
  // Triton serves its health endpoints while models load, not ready until they are.
  loadingHealth: 'answers-loading',
  props: {
    engineVersion: /^\d+\.\d+\.\d+\+trtllm-sim-triton-1$/,
    trtllmVersion: 'sim-triton-1',
    features: { continuousBatching: true, interruptibleDecode: false, embeddings: false },
  },
  nativeMetric: 'nv_inference_request_success',
  faults: {
    oom: { code: 'WORKER_RESET', message: /out of memory/i },
    refuse: { code: 'REPLICA_EXHAUSTED' },
    loading: { code: 'POOL_UNREADY' },
  },
});
