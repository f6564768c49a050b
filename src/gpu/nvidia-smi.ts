/**
 * GPU detection and telemetry from `nvidia-smi --query-gpu=… --format=csv,noheader,nounits`
 * (documented in `nvidia-smi --help-query-gpu`): index, memory in MiB, utilization in %,
 * temperature in °C, `[N/A]` / `[Not Supported]` for fields a board does not report; and the
 * memory of each compute process from `--query-compute-apps=pid,gpu_uuid,used_memory`
 * (`nvidia-smi --help-query-compute-apps`: `used_memory` is the memory its context holds on
 * that device, in MiB with `nounits`).
 */
import { execFile } from 'node:child_process';

export const QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'driver_version',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'temperature.gpu',
  'ecc.errors.uncorrected.volatile.total',
  // Appended, so the columns above keep their positions: `domain:bus:device.function` in hex.
  'pci.bus_id',
] as const;

export const COMPUTE_APP_FIELDS = ['pid', 'gpu_uuid', 'used_memory'] as const;

export interface GpuInfo {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  readonly driverVersion: string;
  readonly memoryTotalBytes: number;
  readonly memoryUsedBytes: number;
  readonly memoryFreeBytes: number;
  /** 0..1 */
  readonly utilization: number | undefined;
  readonly temperatureC: number | undefined;
  /** Uncorrected ECC errors since the driver loaded; undefined where ECC is not supported. */
  readonly eccUncorrected: number | undefined;
  /** `00000000:01:00.0`; the order of these is the order of indices under `CUDA_DEVICE_ORDER=PCI_BUS_ID`. */
  readonly pciBusId: string | undefined;
}

/** One process with a compute context on one GPU (a process on two GPUs is two entries). */
export interface ComputeApp {
  readonly pid: number;
  readonly gpuUuid: string;
  /** Undefined where the driver does not report it (`[N/A]`, e.g. Windows WDDM). */
  readonly usedMemoryBytes: number | undefined;
}

/** The GPU a configured device names: its index or its UUID (UUIDs compare case-insensitively). */
export function findGpu(gpus: readonly GpuInfo[], device: number | string): GpuInfo | undefined {
  if (typeof device === 'number') return gpus.find((g) => g.index === device);
  const want = device.toLowerCase();
  return gpus.find((g) => g.uuid.toLowerCase() === want);
}

const MIB = 1024 * 1024;

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (t === '' || t.startsWith('[')) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses `--format=csv,noheader,nounits` output for `QUERY_FIELDS`, one GPU per line. */
export function parseNvidiaSmiCsv(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split(',').map((x) => x.trim());
    const index = num(f[0]);
    if (index === undefined) throw new Error(`unexpected nvidia-smi line: ${line}`);
    const util = num(f[7]);
    out.push({
      index,
      uuid: f[1] ?? '',
      name: f[2] ?? '',
      driverVersion: f[3] ?? '',
      memoryTotalBytes: (num(f[4]) ?? 0) * MIB,
      memoryUsedBytes: (num(f[5]) ?? 0) * MIB,
      memoryFreeBytes: (num(f[6]) ?? 0) * MIB,
      utilization: util === undefined ? undefined : util / 100,
      temperatureC: num(f[8]),
      eccUncorrected: num(f[9]),
      pciBusId: f[10] === undefined || f[10] === '' || f[10].startsWith('[') ? undefined : f[10],
    });
  }
  return out;
}

/** Parses `--query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits`. */
export function parseComputeAppsCsv(text: string): ComputeApp[] {
  const out: ComputeApp[] = [];
  for (const line of text.split('\n')) {
    // Some drivers print this instead of nothing when no process holds a context.
    if (line.trim() === '' || /no running (compute )?processes/i.test(line)) continue;
    const f = line.split(',').map((x) => x.trim());
    const pid = num(f[0]);
    if (pid === undefined || f[1] === undefined || f[1] === '')
      throw new Error(`unexpected nvidia-smi compute-apps line: ${line}`);
    const mib = num(f[2]);
    out.push({ pid, gpuUuid: f[1], usedMemoryBytes: mib === undefined ? undefined : mib * MIB });
  }
  return out;
}

export type GpuQuery = { ok: true; gpus: GpuInfo[] } | { ok: false; error: string };
export type ComputeAppsQuery = { ok: true; apps: ComputeApp[] } | { ok: false; error: string };

function run<T>(
  binary: string,
  args: readonly string[],
  timeoutMs: number,
  parse: (stdout: string) => T,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        const why =
          (err as NodeJS.ErrnoException).code === 'ENOENT'
            ? `${binary} not found`
            : err.killed
              ? `${binary} did not answer within ${timeoutMs} ms`
              : stderr.trim() || err.message;
        return resolve({ ok: false, error: why });
      }
      try {
        resolve({ ok: true, value: parse(stdout) });
      } catch (e) {
        resolve({ ok: false, error: (e as Error).message });
      }
    });
  });
}

/** Runs nvidia-smi; a missing binary or a failing driver is an answer, not an exception. */
export async function queryGpus(binary: string, timeoutMs = 5_000): Promise<GpuQuery> {
  const r = await run(
    binary,
    [`--query-gpu=${QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
    timeoutMs,
    parseNvidiaSmiCsv,
  );
  return r.ok ? { ok: true, gpus: r.value } : r;
}

/** The memory each compute process holds on each GPU. */
export async function queryComputeApps(binary: string, timeoutMs = 5_000): Promise<ComputeAppsQuery> {
  const r = await run(
    binary,
    [`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
    timeoutMs,
    parseComputeAppsCsv,
  );
  return r.ok ? { ok: true, apps: r.value } : r;
}
