/**
 * Headroom before loading (SPEC §5): estimate what a pool's replicas will need — weights from the
 * artifact's size, KV cache from GGUF metadata, ctx and slots, plus compute buffers — and compare
 * it with free VRAM per device (nvidia-smi) or free host RAM, so a pool that cannot fit is refused
 * with a clear cause instead of running out of memory.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedPool } from '../config/resolved-config.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import { findGpu, type GpuInfo } from '../gpu/nvidia-smi.js';
import { readGgufMetadata } from '../models/gguf-reader.js';

export interface MemoryEstimate {
  readonly weightsBytes: number;
  readonly kvBytes: number;
  readonly overheadBytes: number;
  /** One replica. */
  readonly totalBytes: number;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
/** Compute buffers and CUDA context per replica, beyond weights and KV. */
const OVERHEAD_FIXED = 256 * MIB;

export const gib = (bytes: number): string => `${(bytes / GIB).toFixed(2)} GiB`;

async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const e of await readdir(path)) total += await sizeOf(join(path, e));
  return total;
}

/** KV bytes per token for a GGUF model (f16 K and V), or undefined when the metadata lacks it. */
async function kvBytesPerToken(path: string): Promise<number | undefined> {
  if (!path.endsWith('.gguf')) return undefined;
  // Unreadable metadata is the engine's to report when it loads the file; headroom just knows less.
  const meta = await readGgufMetadata(path).catch(() => undefined);
  if (!meta) return undefined;
  const arch = String(meta.get('general.architecture') ?? '');
  const n = (k: string) => {
    const v = meta.get(`${arch}.${k}`);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  };
  const layers = n('block_count');
  const embd = n('embedding_length');
  const heads = n('attention.head_count');
  const kvHeads = n('attention.head_count_kv') ?? heads;
  if (layers === undefined || embd === undefined || heads === undefined || kvHeads === undefined)
    return undefined;
  return 2 * layers * ((embd * kvHeads) / heads) * 2;
}

export async function estimateMemory(
  pool: ResolvedPool,
  parallel = pool.launch.parallel,
): Promise<MemoryEstimate> {
  // A simulated pool without a model file loads nothing: only the fixed buffers are counted.
  const weightsBytes = pool.model.path === '' ? 0 : await sizeOf(pool.model.path);
  const perToken = (await kvBytesPerToken(pool.model.path)) ?? 0;
  const kvBytes = perToken * pool.ctx * parallel;
  const overheadBytes = OVERHEAD_FIXED + Math.round(weightsBytes * 0.05);
  return { weightsBytes, kvBytes, overheadBytes, totalBytes: weightsBytes + kvBytes + overheadBytes };
}

/** The cause to refuse the pool with, or undefined when every device has room for all replicas. */
export function checkHeadroom(
  pool: ResolvedPool,
  est: MemoryEstimate,
  gpus: readonly GpuInfo[] | undefined,
  hostFreeBytes: number,
): string | undefined {
  const need = est.totalBytes * pool.replicas;
  const what = `${pool.replicas} replica(s) × ${gib(est.totalBytes)} (weights ${gib(est.weightsBytes)}, KV ${gib(est.kvBytes)}, buffers ${gib(est.overheadBytes)})`;
  if (pool.devices === 'cpu') {
    return need > hostFreeBytes
      ? `headroom: pool '${pool.id}' needs ${gib(need)} of host RAM for ${what}, ${gib(hostFreeBytes)} free`
      : undefined;
  }
  if (gpus === undefined) return undefined;
  const devices = pool.devices;
  const split = pool.tensorSplit ?? devices.map(() => 1);
  const sum = split.reduce((a, b) => a + b, 0) || 1;
  for (const [i, d] of devices.entries()) {
    const gpu = findGpu(gpus, d);
    if (!gpu)
      return `headroom: pool '${pool.id}' uses GPU ${d}, which this host does not have (GPUs: ${gpus.map((g) => g.index).join(', ') || 'none'})`;
    const share = need * ((split[i] ?? 0) / sum);
    if (share > gpu.memoryFreeBytes)
      return `headroom: pool '${pool.id}' needs ${gib(share)} on GPU ${d} (${gpu.name}) for ${what}, ${gib(gpu.memoryFreeBytes)} free`;
  }
  return undefined;
}

/**
 * What one replica needs on each of its GPUs before it loads (the capacity planner's demand).
 * vLLM takes `gpu_memory_utilization` of each GPU's total memory up front, whatever the model
 * (its per-instance limit, `vllm/config/cache.py`); llama.cpp what the GGUF estimate says, split
 * by `tensor_split`; TGI and Triton the model directory's size estimate, split evenly.
 */
export async function replicaDemand(
  pool: ResolvedPool,
  gpus: readonly GpuInfo[],
  parallel = pool.launch.parallel,
): Promise<{ bytes: number[]; what: string }> {
  const share = pool.launch.gpuMemoryUtilization;
  // Set only for engines whose driver honours a memory share (vLLM's, `launch.gpu_memory_utilization`).
  if (share !== undefined)
    return {
      bytes: gpus.map((g) => Math.ceil(g.memoryTotalBytes * share)),
      what: `${ENGINE_DRIVERS[pool.engine].displayName} gpu_memory_utilization ${share} of each GPU's total memory`,
    };
  const est = await estimateMemory(pool, parallel);
  const split = pool.tensorSplit?.length === gpus.length ? pool.tensorSplit : gpus.map(() => 1);
  const sum = split.reduce((a, b) => a + b, 0) || 1;
  return {
    bytes: gpus.map((_, i) => Math.ceil(est.totalBytes * ((split[i] ?? 0) / sum))),
    what: `${gib(est.totalBytes)} per replica: weights ${gib(est.weightsBytes)}, KV ${gib(est.kvBytes)}, buffers ${gib(est.overheadBytes)}${gpus.length > 1 ? `, split ${split.join(':')} over ${gpus.length} GPUs` : ''}`,
  };
}
