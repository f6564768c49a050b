/**
 * Run files: one small JSON file per engine under `<data_dir>/run/`, so that a daemon finds and
 * ends the engines a crashed predecessor left behind (SPEC §17 §5: no engine outlives its
 * supervisor). The watchdog normally ends an engine whose daemon died; a run file covers the case
 * it cannot: the watchdog killed as well (`kill -9` of the whole tree, the OOM killer).
 *
 * A file names the engine's process group and the processes that prove it is still the same
 * group: its leader (the watchdog) and the engine, each with its start time from
 * `/proc/<pid>/stat`, so a pid the kernel has since given to another program is never signalled.
 * The boot id makes files from before a reboot harmless. Linux only: elsewhere no files are
 * written and nothing is reaped.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';

/** One running engine as its run file records it. */
export interface EngineRunRecord {
  readonly version: 1;
  readonly boot_id: string;
  /** The daemon that started the engine: while it lives, its engines are its own business. */
  readonly owner: { readonly pid: number; readonly start: string };
  /** Process group of the engine (the watchdog's pid). */
  readonly pgid: number;
  readonly leader_start: string;
  readonly engine_pid?: number;
  readonly engine_start?: string;
  /** The replica it serves, for the log. */
  readonly label?: string;
  readonly cmdline: readonly string[];
  readonly created_ms: number;
}

/** What a start-up sweep ended: one entry per process group. */
export interface ReapedGroup {
  readonly pgid: number;
  readonly pids: readonly number[];
  readonly label: string | undefined;
  readonly cmdline: readonly string[];
  readonly ownerPid: number;
  /** True when SIGTERM was not enough. */
  readonly killed: boolean;
}

interface ProcStat {
  readonly state: string;
  readonly pgid: number;
  /** Clock ticks after boot, as text (it can exceed 2^53 in theory). */
  readonly start: string;
}

const PROC = '/proc';
const supported = (): boolean => existsSync(join(PROC, 'self', 'stat'));

/** `/proc/<pid>/stat`, parsed; undefined when the process does not exist. */
function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(join(PROC, String(pid), 'stat'), 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 3 (state), 5 (pgrp) and 22 (starttime), counted from 1 as in proc(5).
  const state = rest[0];
  const pgid = Number(rest[2]);
  const start = rest[19];
  if (state === undefined || start === undefined || !Number.isInteger(pgid)) return undefined;
  return { state, pgid, start };
}

/** The start time of a live (not zombie) process, the identity that a reused pid cannot fake. */
export function processStartTime(pid: number): string | undefined {
  const s = procStat(pid);
  return s === undefined || s.state === 'Z' ? undefined : s.start;
}

function bootId(): string {
  try {
    return readFileSync(join(PROC, 'sys', 'kernel', 'random', 'boot_id'), 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

const sameProcess = (pid: number | undefined, start: string | undefined): boolean =>
  pid !== undefined && start !== undefined && processStartTime(pid) === start;

/** Live members of a process group, with their stats. */
function groupMembers(pgid: number): { pid: number; stat: ProcStat }[] {
  const out: { pid: number; stat: ProcStat }[] = [];
  let entries: string[];
  try {
    entries = readdirSync(PROC);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const stat = procStat(pid);
    if (stat && stat.pgid === pgid && stat.state !== 'Z') out.push({ pid, stat });
  }
  return out;
}

/**
 * The members of a recorded group that are provably that group: its leader or its engine still
 * runs with the recorded start time; or, with both gone and no process holding the leader's pid
 * (so the group id cannot have been handed to a new group), the members started after the leader
 * — the engine's own workers.
 */
function verifiedMembers(rec: EngineRunRecord): { pid: number; stat: ProcStat }[] {
  const members = groupMembers(rec.pgid);
  if (members.length === 0) return [];
  if (sameProcess(rec.pgid, rec.leader_start)) return members;
  if (sameProcess(rec.engine_pid, rec.engine_start) && procStat(rec.engine_pid ?? 0)?.pgid === rec.pgid)
    return members;
  if (procStat(rec.pgid) !== undefined) return [];
  return members.filter((m) => BigInt(m.stat.start) >= BigInt(rec.leader_start));
}

function parse(text: string): EngineRunRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<EngineRunRecord>;
    if (
      v.version !== 1 ||
      typeof v.pgid !== 'number' ||
      typeof v.leader_start !== 'string' ||
      typeof v.boot_id !== 'string' ||
      typeof v.owner?.pid !== 'number' ||
      typeof v.owner.start !== 'string'
    )
      return undefined;
    return v as EngineRunRecord;
  } catch {
    return undefined;
  }
}

/** Flags whose value is a credential (engines' API keys): never written to a file or a log. */
const SECRET_FLAG = /^--?(?:api[-_]?key|token|password|secret|key)$/i;
const SECRET_FLAG_INLINE = /^(--?(?:api[-_]?key|token|password|secret|key))=.*/i;

function maskSecrets(args: readonly string[]): string[] {
  return args.map((a, i) => {
    if (SECRET_FLAG_INLINE.test(a)) return a.replace(SECRET_FLAG_INLINE, '$1=[redacted]');
    const prev = args[i - 1];
    return prev !== undefined && SECRET_FLAG.test(prev) ? '[redacted]' : a;
  });
}

function writeAtomic(path: string, rec: EngineRunRecord): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** The run file of one engine: written at spawn, completed with the engine's pid, removed at exit. */
export class EngineRunFile {
  readonly path: string;
  #rec: EngineRunRecord;

  private constructor(path: string, rec: EngineRunRecord) {
    this.path = path;
    this.#rec = rec;
  }

  /**
   * Records a just-spawned group leader (synchronously: the record must exist before anything can
   * kill this daemon). Undefined where run files are unsupported or the leader is already gone.
   */
  static create(
    dir: string,
    leaderPid: number,
    cmdline: readonly string[],
    label: string | undefined,
  ): EngineRunFile | undefined {
    if (!supported()) return undefined;
    const leaderStart = processStartTime(leaderPid);
    const ownerStart = processStartTime(process.pid);
    if (leaderStart === undefined || ownerStart === undefined) return undefined;
    const rec: EngineRunRecord = {
      version: 1,
      boot_id: bootId(),
      owner: { pid: process.pid, start: ownerStart },
      pgid: leaderPid,
      leader_start: leaderStart,
      ...(label === undefined ? {} : { label }),
      cmdline: maskSecrets(cmdline),
      created_ms: Date.now(),
    };
    const name = `${(label ?? 'engine').replace(/[^A-Za-z0-9_.-]/g, '_')}-${leaderPid}.json`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = new EngineRunFile(join(dir, name), rec);
    writeAtomic(file.path, rec);
    return file;
  }

  /** Adds the engine process itself (reported by the watchdog once it has spawned it). */
  engineStarted(pid: number): void {
    const start = processStartTime(pid);
    if (start === undefined) return;
    this.#rec = { ...this.#rec, engine_pid: pid, engine_start: start };
    try {
      writeAtomic(this.path, this.#rec);
    } catch {
      // The leader's entry is enough to find the group; the engine's pid only sharpens it.
    }
  }

  remove(): void {
    rmSync(this.path, { force: true });
    rmSync(`${this.path}.tmp`, { force: true });
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function signalUntilGone(
  pgid: number,
  signal: NodeJS.Signals,
  waitMs: number,
  left: () => number,
): Promise<boolean> {
  try {
    process.kill(-pgid, signal);
  } catch {
    return true;
  }
  for (const end = Date.now() + waitMs; Date.now() < end;) {
    if (left() === 0) return true;
    await sleep(50);
  }
  return left() === 0;
}

export interface ReapOptions {
  readonly logger: Logger;
  /** Between SIGTERM and SIGKILL. */
  readonly graceMs?: number;
}

/**
 * Ends every engine group that a dead daemon recorded under `dir` and removes the stale files.
 * Groups whose daemon still runs (another process on the same data directory) are left alone,
 * with a warning. Call it before starting this daemon's own engines, so their devices and ports
 * are free.
 */
export async function reapOrphanEngines(dir: string, o: ReapOptions): Promise<ReapedGroup[]> {
  if (!supported() || !existsSync(dir)) return [];
  const reaped: ReapedGroup[] = [];
  const boot = bootId();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name.endsWith('.tmp')) {
      rmSync(path, { force: true });
      continue;
    }
    if (!name.endsWith('.json')) continue;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue;
    }
    const rec = parse(text);
    if (rec === undefined || rec.boot_id !== boot) {
      // Unreadable, or written before a reboot: its processes cannot exist any more.
      rmSync(path, { force: true });
      continue;
    }
    if (sameProcess(rec.owner.pid, rec.owner.start)) {
      if (rec.owner.pid !== process.pid)
        o.logger.warn(
          { event: 'engine.run_file_owned', path, owner_pid: rec.owner.pid, pgid: rec.pgid },
          `engine group ${rec.pgid} belongs to live daemon ${rec.owner.pid} on the same data_dir; left alone`,
        );
      continue;
    }
    const members = verifiedMembers(rec);
    if (members.length === 0) {
      rmSync(path, { force: true });
      continue;
    }
    const pids = members.map((m) => m.pid);
    const left = () => verifiedMembers(rec).length;
    const termed = await signalUntilGone(rec.pgid, 'SIGTERM', o.graceMs ?? 2_000, left);
    if (!termed) await signalUntilGone(rec.pgid, 'SIGKILL', 10_000, left);
    const group: ReapedGroup = {
      pgid: rec.pgid,
      pids,
      label: rec.label,
      cmdline: rec.cmdline,
      ownerPid: rec.owner.pid,
      killed: !termed,
    };
    reaped.push(group);
    o.logger.warn(
      {
        event: 'engine.orphan_reaped',
        pgid: rec.pgid,
        pids,
        replica_id: rec.label,
        cmdline: rec.cmdline.join(' '),
        previous_owner_pid: rec.owner.pid,
        signal: termed ? 'SIGTERM' : 'SIGKILL',
        gone: left() === 0,
      },
      `reaped engine group ${rec.pgid} (${rec.label ?? 'engine'}, pids ${pids.join(' ')}) left by daemon ${rec.owner.pid}`,
    );
    if (left() === 0) rmSync(path, { force: true });
  }
  return reaped;
}

/** `<data_dir>/run`: where a daemon keeps its engines' run files. */
export function runDirOf(dataDir: string): string {
  return join(dataDir, 'run');
}
