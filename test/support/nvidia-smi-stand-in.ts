/**
 * Drives the nvidia-smi stand-in (test/fixtures/nvidia-smi): its GPU list, its per-process
 * memory list and its failures live in files of a fresh directory, so a test can change what
 * "the driver" reports while an orchestrator (or a pool-managerd process) keeps reading it.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;
export const fixture = (name: string) => new URL(`../fixtures/nvidia-smi/${name}`, import.meta.url).pathname;

export interface StandInGpu {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  readonly totalMib: number;
  readonly usedMib: number;
  readonly utilizationPct?: number;
  readonly pciBusId?: string;
}

export class NvidiaSmiStandIn {
  readonly dir: string;
  readonly gpusFile: string;
  readonly appsFile: string;
  readonly failFile: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.gpusFile = join(dir, 'gpus.csv');
    this.appsFile = join(dir, 'apps.csv');
    this.failFile = join(dir, 'fail');
  }

  /** A stand-in reporting the GPUs of `fixtureName` (a CSV under test/fixtures/nvidia-smi). */
  static async create(fixtureName: string): Promise<NvidiaSmiStandIn> {
    const s = new NvidiaSmiStandIn(await mkdtemp(join(tmpdir(), 'llorch-smi-')));
    await writeFile(s.gpusFile, await readFile(fixture(fixtureName), 'utf8'));
    await writeFile(s.appsFile, '');
    return s;
  }

  /** The variables the stand-in reads; set them in this process (children inherit them). */
  env(): Record<string, string> {
    return {
      FAKE_NVIDIA_SMI_FILE: this.gpusFile,
      FAKE_NVIDIA_SMI_APPS_FILE: this.appsFile,
      FAKE_NVIDIA_SMI_FAIL_FILE: this.failFile,
    };
  }

  install(): void {
    Object.assign(process.env, this.env());
  }

  /** Rewrites the GPU list (the documented csv,noheader,nounits columns). */
  async setGpus(gpus: readonly StandInGpu[]): Promise<void> {
    const line = (g: StandInGpu) =>
      [
        g.index,
        g.uuid,
        g.name,
        '570.124.06',
        g.totalMib,
        g.usedMib,
        g.totalMib - g.usedMib,
        g.utilizationPct ?? 0,
        40,
        0,
        g.pciBusId ?? `00000000:${(0x19 + g.index * 0x11).toString(16).toUpperCase()}:00.0`,
      ].join(', ');
    await writeFile(this.gpusFile, gpus.map(line).join('\n') + '\n');
  }

  /** Rewrites the per-process list: which pid holds how many MiB on which GPU. */
  async setApps(apps: readonly { pid: number; uuid: string; mib: number }[]): Promise<void> {
    await writeFile(this.appsFile, apps.map((a) => `${a.pid}, ${a.uuid}, ${a.mib}`).join('\n') + '\n');
  }

  /** Makes every call fail like a host whose driver went away, or work again. */
  async fail(on: boolean): Promise<void> {
    if (on) await writeFile(this.failFile, '');
    else await rm(this.failFile, { force: true });
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The children of a process (Linux): the engine a watchdog runs is its only child. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/** A process's environment (Linux `/proc/<pid>/environ`). */
export function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
