/** What the simulator needs to stand in for a pool's Triton server: its ports and its model repository. */
import type { ResolvedPool } from '../../config/resolved-config.js';
import { TRITON_MODEL_DEFAULTS } from './model-names.js';

/** `ports`: HTTP and metrics (the simulator serves no gRPC). */
export function tritonSimArgs(pool: ResolvedPool, ports: readonly number[]): string[] {
  const models = pool.launch.triton ?? TRITON_MODEL_DEFAULTS;
  return [
    '--metrics-port',
    String(ports[1] ?? 0),
    '--triton-ensemble',
    pool.launch.sim.tritonEnsemble,
    '--triton-ensemble-model',
    models.ensemble,
    '--triton-preprocessing-model',
    models.preprocessing,
    '--triton-tensorrt-llm-model',
    models.tensorrtLlm,
  ];
}
