/**
 * One engine child process: spawn, capture its output for diagnostics, stop it.
 *
 * Each engine runs under `engine-watchdog` as the leader of its own process group: the terminal's
 * Ctrl-C does not reach it (the daemon stops it on its own shutdown path), every signal goes to
 * the whole group so an engine's own workers (vLLM, TGI) end with it, and the watchdog ends the
 * group when this process dies without stopping it (`kill -9`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/logger.js';

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
}

const live = new Set<ChildProcess>();
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
  process.on('exit', () => {
    for (const child of live) signalGroup(child, 'SIGKILL');
  });
}

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
  readonly exited: Promise<EngineExit>;
  #exit: EngineExit | undefined;

  constructor(opts: EngineProcessOptions) {
    installExitHook();
    this.#keep = opts.keepLines ?? 200;
    // stdin is the watchdog's lifeline: it is never written, and closes when this process dies.
    this.#child = spawn(process.execPath, [...watchdogEntry(), opts.binary, ...opts.args], {
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    live.add(this.#child);
    const onData = (b: Buffer) => {
      for (const line of b.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.#lines.push(line);
        if (this.#lines.length > this.#keep) this.#lines.shift();
        opts.logger.trace({ event: 'engine.output', pid: this.#child.pid }, line);
      }
    };
    this.#child.stdout?.on('data', onData);
    this.#child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.#lines.push(`spawn failed: ${err.message}`);
        this.#exit = { code: -1, signal: null };
        live.delete(this.#child);
        resolve(this.#exit);
      });
      this.#child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this.#child);
        // Workers the engine left behind (a crash, or children ignoring SIGTERM) would keep its
        // ports and VRAM: end what is left of the group. Done at once, before the group's id can
        // be reused.
        signalGroup(this.#child, 'SIGKILL');
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
