/**
 * GPU or nothing (ORCH-1101, ORCH-3018): llama-server's own report of where the model went,
 * read from its startup output, and the decision a prod GPU pool is refused on.
 *
 * What the pinned source (llama.cpp v0.5.0 as bundled by node-llama-cpp 3.22.1) prints:
 * - src/llama-model.cpp, `llama_model::load_tensors`, only when the build supports GPU offload
 *   (`llama_supports_gpu_offload()`, i.e. a GPU backend is present):
 *   `load_tensors: offloaded %d/%d layers to GPU` — min(n_gpu_layers, n_layer + 1) of
 *   n_layer + 1 (the repeating layers plus the output layer). A CPU build prints no such line.
 * - ggml/src/ggml-cuda/ggml-cuda.cu, `ggml_cuda_init`: `ggml_cuda_init: found %d CUDA devices
 *   (Total VRAM: %zu MiB):` then `  Device %d: %s, compute capability %d.%d, VMM: %s, VRAM: …`.
 * - src/llama.cpp, `llama_model_load_from_file_impl`: `using device %s (%s) (%s) - %zu MiB free`
 *   for each device the model uses (`CUDA0 (NVIDIA H200)`).
 * - common/arg.cpp, `-ngl` on a build without GPU support: `warning: no usable GPU found,
 *   --gpu-layers option will be ignored`.
 * libllama's info lines are logged at verbosity 4 (common/log.cpp maps GGML_LOG_LEVEL_INFO to
 * LOG_LEVEL_TRACE) while the server's default threshold is 3 (common/common.h), so GPU pools run
 * llama-server with `-lv 4` (`OFFLOAD_REPORT_ARGS`).
 */
import type { Logger } from '../../util/logger.js';

/** Arguments that make llama-server print its offload report (see above). */
export const OFFLOAD_REPORT_ARGS = ['-lv', '4'] as const;

const OFFLOADED = /\b(?:llm_)?load_tensors: offloaded (\d+)\/(\d+) layers to GPU/;
const CUDA_FOUND = /ggml_cuda_init: found (\d+) CUDA devices/;
const CUDA_DEVICE = /\bDevice (\d+): (.+?), compute capability (\d+\.\d+)/;
const USING_DEVICE = /using device (CUDA\d+) \(([^)]*)\)/;
const NO_GPU = /no usable GPU found, --gpu-layers option will be ignored/;

/** The engine output lines the report is made of (kept apart from the diagnostics window). */
export const OFFLOAD_REPORT_LINES = new RegExp(
  [OFFLOADED, CUDA_FOUND, CUDA_DEVICE, USING_DEVICE, NO_GPU].map((r) => r.source).join('|'),
);

export interface OffloadReport {
  /** The last `offloaded N/M layers to GPU` line; undefined when none was printed. */
  readonly offloaded: { readonly layers: number; readonly of: number } | undefined;
  /** CUDA devices the engine found (`found N CUDA devices`); 0 when it printed none. */
  readonly cudaDevicesFound: number;
  /** The CUDA devices the model uses, e.g. `CUDA0 (NVIDIA H200)`; else those found. */
  readonly cudaDevices: readonly string[];
  /** The engine said it has no usable GPU and ignores `--gpu-layers`. */
  readonly noUsableGpu: boolean;
}

export function parseOffloadReport(lines: readonly string[]): OffloadReport {
  let offloaded: OffloadReport['offloaded'];
  let found = 0;
  const using: string[] = [];
  const listed: string[] = [];
  let noUsableGpu = false;
  for (const line of lines) {
    const o = OFFLOADED.exec(line);
    // The last one wins: a dry run (`--fit`) may load the model before the real load.
    if (o) offloaded = { layers: Number(o[1]), of: Number(o[2]) };
    const f = CUDA_FOUND.exec(line);
    if (f) found = Math.max(found, Number(f[1]));
    const d = CUDA_DEVICE.exec(line);
    if (d) listed.push(`CUDA${d[1]} (${d[2]}, compute capability ${d[3]})`);
    const u = USING_DEVICE.exec(line);
    if (u) using.push(`${u[1]} (${u[2]})`);
    if (NO_GPU.test(line)) noUsableGpu = true;
  }
  const cudaDevices = [...new Set(using.length > 0 ? using : listed)];
  return { offloaded, cudaDevicesFound: Math.max(found, cudaDevices.length), cudaDevices, noUsableGpu };
}

export type OffloadVerdict =
  { readonly ok: true; readonly summary: string } | { readonly ok: false; readonly cause: string };

export interface OffloadExpectation {
  /** `launch.gpu_layers` (llama-server `-ngl`). */
  readonly requestedLayers: number;
  readonly binary: string;
  /** The binary's build (`cpu`, `cuda`, or `unknown` for binaries not built here). */
  readonly build: string;
}

/**
 * Whether the engine's report shows the model on a CUDA GPU as configured: some layers
 * offloaded, as many as requested (llama.cpp caps the request at n_layer + 1), to a CUDA device.
 */
export function judgeOffload(report: OffloadReport, e: OffloadExpectation): OffloadVerdict {
  const binary = `binary ${e.binary} (${e.build} build)`;
  const requested = `launch.gpu_layers: ${e.requestedLayers}`;
  const o = report.offloaded;
  if (o === undefined) {
    const warned = report.noUsableGpu
      ? '; it warned "no usable GPU found, --gpu-layers option will be ignored"'
      : '';
    return {
      ok: false,
      cause:
        `no layers offloaded to the GPU (CPU build?): llama-server printed no "offloaded N/M layers ` +
        `to GPU" line${warned} (${requested}); ${binary}`,
    };
  }
  if (o.layers === 0)
    return {
      ok: false,
      cause: `no layers offloaded to the GPU: llama-server offloaded 0/${o.of} layers (${requested}); ${binary}`,
    };
  const expected = Math.min(e.requestedLayers, o.of);
  if (o.layers < expected)
    return {
      ok: false,
      cause:
        `only ${o.layers}/${o.of} layers offloaded to the GPU, ${expected} requested (${requested}): ` +
        `the rest would run on CPU; ${binary}`,
    };
  if (report.cudaDevicesFound === 0)
    return {
      ok: false,
      cause:
        `llama-server offloaded ${o.layers}/${o.of} layers but reported no CUDA device ` +
        `(no "ggml_cuda_init: found N CUDA devices" or "using device CUDAn" line): inference is ` +
        `served only by NVIDIA GPUs; ${binary}`,
    };
  const on = report.cudaDevices.length > 0 ? ` on ${report.cudaDevices.join(', ')}` : '';
  return { ok: true, summary: `offloaded ${o.layers}/${o.of} layers to the GPU${on}` };
}

/** The supervisor's hook: which output lines to keep, and the judgement of a started replica. */
export interface OffloadCheck {
  readonly lines: RegExp;
  /** A cause refuses the replica (not retried); undefined lets it serve. */
  verify(report: readonly string[], replicaId: string): string | undefined;
}

export interface OffloadCheckOptions {
  readonly pool: {
    readonly id: string;
    readonly engine: string;
    readonly devices: 'cpu' | readonly unknown[];
    readonly launch: { readonly worker: string; readonly gpuLayers: number };
  };
  readonly profile: 'prod' | 'dev';
  readonly binary: string;
  readonly build: string;
  readonly logger: Logger;
  /** Called when a replica is refused (metrics). */
  readonly onRefused?: () => void;
}

/**
 * The offload check of a llama.cpp GPU pool (devices not `cpu`, `gpu_layers` > 0), undefined
 * for any other pool. The prod profile refuses a replica whose engine did not offload as
 * configured; the dev profile only warns (ORCH-1101 lets dev run on CPU).
 */
export function llamaOffloadCheck(o: OffloadCheckOptions): OffloadCheck | undefined {
  const { pool, logger } = o;
  if (pool.engine !== 'llamacpp' || pool.launch.worker !== 'native') return undefined;
  if (pool.devices === 'cpu' || pool.launch.gpuLayers <= 0) return undefined;
  return {
    lines: OFFLOAD_REPORT_LINES,
    verify: (lines, replicaId) => {
      const verdict = judgeOffload(parseOffloadReport(lines), {
        requestedLayers: pool.launch.gpuLayers,
        binary: o.binary,
        build: o.build,
      });
      const fields = { event: 'engine.gpu_offload', pool_id: pool.id, replica_id: replicaId };
      if (verdict.ok) {
        logger.info({ ...fields, ok: true }, `${replicaId}: ${verdict.summary}`);
        return undefined;
      }
      if (o.profile === 'dev') {
        logger.warn(
          { ...fields, ok: false, cause: verdict.cause },
          `DEV PROFILE: ${replicaId} serves although ${verdict.cause}; prod refuses this (ORCH-1101)`,
        );
        return undefined;
      }
      o.onRefused?.();
      return `${verdict.cause}; the prod profile serves only from the GPU (ORCH-1101, ORCH-3018)`;
    },
  };
}
