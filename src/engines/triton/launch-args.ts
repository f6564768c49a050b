/** `tritonserver` over a TensorRT-LLM model repository; gRPC gets its own port so replicas coexist. */
import type { ResolvedPool } from '../../config/resolved-config.js';

/** `ports`: HTTP, metrics and gRPC. */
export function tritonArgs(pool: ResolvedPool, ports: readonly number[]): string[] {
  const [http, metrics, grpc] = ports;
  const l = pool.launch;
  return [
    `--model-repository=${pool.model.path}`,
    `--http-address=${l.host}`,
    `--http-port=${http ?? 0}`,
    `--metrics-address=${l.host}`,
    `--metrics-port=${metrics ?? 0}`,
    `--grpc-address=${l.host}`,
    `--grpc-port=${grpc ?? 0}`,
    ...l.extraArgs,
  ];
}
