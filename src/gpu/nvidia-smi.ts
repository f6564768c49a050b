/**
 * GPU detection and telemetry from `nvidia-smi --query-gpu=… --format=csv,noheader,nounits`
 * (documented in `nvidia-smi --help-query-gpu`): index, memory in MiB, utilization in %,
 * temperature in °C, `[N/A]` / `[Not Supported]` for fields a board does not report.
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
] as const;

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
    });
  }
  return out;
}

export type GpuQuery = { ok: true; gpus: GpuInfo[] } | { ok: false; error: string };

/** Runs nvidia-smi; a missing binary or a failing driver is an answer, not an exception. */
export function queryGpus(binary: string, timeoutMs = 5_000): Promise<GpuQuery> {
  return new Promise((resolve) => {
    execFile(
      binary,
      [`--query-gpu=${QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'],
      { timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err) {
          const why =
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? `${binary} not found`
              : stderr.trim() || err.message;
          return resolve({ ok: false, error: why });
        }
        try {
          resolve({ ok: true, gpus: parseNvidiaSmiCsv(stdout) });
        } catch (e) {
          resolve({ ok: false, error: (e as Error).message });
        }
      },
    );
  });
}
