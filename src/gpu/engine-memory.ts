/**
 * Which GPU memory belongs to which engine: nvidia-smi lists compute processes by pid, and an
 * engine runs as the child of its watchdog, in the watchdog's process group, with whatever workers
 * it forks itself (vLLM's engine core, tensor-parallel workers, TGI shards). So a process belongs
 * to a replica when its process group is the one the replica's watchdog leads.
 */
import { readFileSync } from 'node:fs';
import type { ComputeApp } from './nvidia-smi.js';

/** What this host knows of a process; injectable so attribution is testable without processes. */
export interface ProcessTable {
  /** The process group of `pid`; undefined when no such process is visible here. */
  groupOf(pid: number): number | undefined;
}

/** Linux `/proc/<pid>/stat`: `pid (comm) state ppid pgrp …` (comm may hold spaces and parens). */
export const procTable: ProcessTable = {
  groupOf(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(rest[2]);
      return Number.isInteger(pgrp) ? pgrp : undefined;
    } catch {
      return undefined;
    }
  },
};

/**
 * The memory the engine led by `leaderPid` holds on the GPU `gpuUuid`, summed over its processes;
 * undefined when nvidia-smi lists none of them there (absent, never guessed).
 */
export function engineMemoryOn(
  apps: readonly ComputeApp[],
  leaderPid: number,
  gpuUuid: string,
  procs: ProcessTable = procTable,
): number | undefined {
  const uuid = gpuUuid.toLowerCase();
  let total: number | undefined;
  for (const a of apps) {
    if (a.gpuUuid.toLowerCase() !== uuid || a.usedMemoryBytes === undefined) continue;
    if (a.pid !== leaderPid && procs.groupOf(a.pid) !== leaderPid) continue;
    total = (total ?? 0) + a.usedMemoryBytes;
  }
  return total;
}

/**
 * Whether the pids nvidia-smi printed are pids of this host's process namespace. In a container
 * without the host's PID namespace they are not, and no engine can be matched by pid.
 */
export function appsVisible(apps: readonly ComputeApp[], procs: ProcessTable = procTable): boolean {
  return apps.every((a) => procs.groupOf(a.pid) !== undefined);
}
