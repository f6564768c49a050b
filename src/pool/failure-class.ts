/**
 * Tells engine failures apart from their exit and output (SPEC §5): GPU memory exhaustion vs
 * host memory exhaustion, driver resets and ECC errors vs other CUDA errors vs a plain exit. The
 * class appears in the replica's cause, the logs and `engine_failures_total{reason}`.
 */
import type { EngineExit } from './engine-process.js';

export type FailureKind = 'vram_oom' | 'host_oom' | 'driver_reset' | 'ecc' | 'cuda_error' | 'exit';

const PATTERNS: readonly [FailureKind, RegExp][] = [
  ['ecc', /\bECC\b|uncorrectable (?:memory )?error/i],
  [
    'driver_reset',
    /\bXid\b|fallen off the bus|GPU is lost|driver (?:was )?reset|cudaErrorDevicesUnavailable|unspecified launch failure/i,
  ],
  [
    'vram_oom',
    /CUDA out of memory|cudaMalloc(?:Async)? failed|CUDA error: out of memory|ggml_backend_cuda_buffer_type_alloc_buffer: allocating .* failed|failed to allocate CUDA/i,
  ],
  ['host_oom', /std::bad_alloc|Cannot allocate memory|out of host memory|failed to allocate .*CPU buffer/i],
  ['cuda_error', /CUDA error|cudaError|CUBLAS_STATUS|NCCL error/i],
];

export interface ClassifiedFailure {
  readonly kind: FailureKind;
  /** The output line that decided it, when one did. */
  readonly line: string | undefined;
}

export function classifyFailure(exit: EngineExit | undefined, output: readonly string[]): ClassifiedFailure {
  for (const [kind, re] of PATTERNS) {
    const line = [...output].reverse().find((l) => re.test(l));
    if (line !== undefined) return { kind, line };
  }
  // Killed without a word: on Linux that is the kernel's OOM killer in practice.
  if (exit?.signal === 'SIGKILL') return { kind: 'host_oom', line: undefined };
  return { kind: 'exit', line: undefined };
}
