/**
 * One engine child process: spawn, capture its output for diagnostics, stop it.
 *
 * Each engine runs under `engine-watchdog` as the leader of its own process group: the terminal's
 * Ctrl-C does not reach it (the daemon stops it on its own shutdown path), every signal goes to
 * the whole group so an engine's own workers (vLLM, TGI) end with it, and the watchdog ends the
 * group when this process dies without stopping it (`kill -9`). With a run directory, a run file
 * records the group until the engine exits, so that a daemon starting after a crash that took the
 * watchdog too can still find and end it (`run-files.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/logger.js';
import { EngineRunFile } from './run-files.js';

export interface EngineExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface EngineProcessOptions {
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  /** Lines of output kept for diagnostics. */
  readonly keepLines?: number;
  /**
   * Lines matching this are also kept apart from the diagnostics window (the first
   * `RETAINED_LINES`), so a startup report (llama.cpp's GPU offload lines) outlives the chatter
   * that follows it.
   */
  readonly retain?: RegExp | undefined;
  /** Where the engine's run file goes (`<data_dir>/run`); none when undefined. */
  readonly runDir?: string | undefined;
  /** The replica the engine serves (run file name, logs). */
  readonly label?: string | undefined;
}

interface LiveEngine {
  readonly child: ChildProcess;
  runFile: EngineRunFile | undefined;
}

const live = new Set<LiveEngine>();
const RETAINED_LINES = 64;
let exitHookInstalled = false;

/** Signals an engine's process group; false when there is none left to signal. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Engines must not outlive the orchestrator, even when it exits abruptly. (A `kill -9` runs no
 * hook: the watchdog sees its stdin close.)
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => killAllEngines());
}

/**
 * SIGKILLs the process group of every engine this process started and still runs, and drops their
 * run files: the last step of a forced or immediate shutdown, and of every exit.
 */
export function killAllEngines(): number {
  let n = 0;
  for (const e of live) {
    if (signalGroup(e.child, 'SIGKILL')) n++;
    e.runFile?.remove();
  }
  live.clear();
  return n;
}

/** Names the fd on which the watchdog reports `engine <pid>` once it has spawned the engine. */
export const WATCHDOG_REPORT_FD_ENV = 'LLORCH_WATCHDOG_REPORT_FD';

/** The watchdog entry: compiled JS next to this module, or the TypeScript source under tsx. */
function watchdogEntry(): string[] {
  const js = fileURLToPath(new URL('./engine-watchdog.js', import.meta.url));
  if (existsSync(js)) return [js];
  return ['--import', 'tsx', fileURLToPath(new URL('./engine-watchdog.ts', import.meta.url))];
}

export class EngineProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #keep: number;
  readonly #retained: string[] = [];
  readonly exited: Promise<EngineExit>;
  #exit: EngineExit | undefined;

  constructor(opts: EngineProcessOptions) {
    installExitHook();
    this.#keep = opts.keepLines ?? 200;
    // stdin is the watchdog's lifeline: it is never written, and closes when this process dies.
    // fd 3 is where the watchdog reports the engine's pid (for the run file).
    this.#child = spawn(process.execPath, [...watchdogEntry(), opts.binary, ...opts.args], {
      env: { ...opts.env, [WATCHDOG_REPORT_FD_ENV]: '3' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const entry: LiveEngine = { child: this.#child, runFile: undefined };
    live.add(entry);
    if (opts.runDir !== undefined && this.#child.pid !== undefined) {
      try {
        entry.runFile = EngineRunFile.create(
          opts.runDir,
          this.#child.pid,
          [opts.binary, ...opts.args],
          opts.label,
        );
      } catch (err) {
        opts.logger.warn(
          { event: 'engine.run_file_failed', err: (err as Error).message, dir: opts.runDir },
          `cannot record the engine in ${opts.runDir}: a crash of this daemon and its watchdog could leave it running`,
        );
      }
    }
    const report = this.#child.stdio[3];
    if (report && 'on' in report) {
      let buf = '';
      report.on('data', (b: Buffer) => {
        buf += b.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const m = /^engine (\d+)$/.exec(buf.slice(0, nl).trim());
          buf = buf.slice(nl + 1);
          if (m) entry.runFile?.engineStarted(Number(m[1]));
        }
      });
      report.on('error', () => undefined);
    }
    const onLine = (line: string) => {
      if (line.trim() === '') return;
      this.#lines.push(line);
      if (this.#lines.length > this.#keep) this.#lines.shift();
      if (opts.retain?.test(line) === true && this.#retained.length < RETAINED_LINES)
        this.#retained.push(line);
      opts.logger.trace({ event: 'engine.output', pid: this.#child.pid }, line);
    };
    // Whole lines: a pipe chunk may end mid-line, and a split line would hide a startup report.
    for (const stream of [this.#child.stdout, this.#child.stderr])
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
    this.exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.#lines.push(`spawn failed: ${err.message}`);
        this.#exit = { code: -1, signal: null };
        live.delete(entry);
        entry.runFile?.remove();
        resolve(this.#exit);
      });
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(entry);
        // Workers the engine left behind (a crash, or children ignoring SIGTERM) would keep its
        // ports and VRAM: end what is left of the group. Done at once, before the group's id can
        // be reused.
        signalGroup(this.#child, 'SIGKILL');
        entry.runFile?.remove();
        resolve(this.#exit);
      });
    });
  }

  /** The process-group leader (the watchdog); the engine is in its group. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exit(): EngineExit | undefined {
    return this.#exit;
  }

  /** The last output lines (most recent last). */
  output(): readonly string[] {
    return [...this.#lines];
  }

  /** Output lines that matched `retain`, in order (the first `RETAINED_LINES`). */
  retained(): readonly string[] {
    return [...this.#retained];
  }

  /** The most recent line that looks like an error, for an operator-facing cause. */
  lastError(): string | undefined {
    return [...this.#lines].reverse().find((l) => /error|failed|fatal|exception|abort/i.test(l));
  }

  /** SIGTERM to the engine's group, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3_000): Promise<EngineExit> {
    if (this.#exit) return this.#exit;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** Signals the engine's whole group. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#exit) return;
    if (!signalGroup(this.#child, signal)) this.#child.kill(signal);
  }
}

export function describeExit(exit: EngineExit): string {
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? 'unknown'}`;
}
