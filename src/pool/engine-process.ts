/** One engine child process: spawn, capture its output for diagnostics, stop it. */
import { spawn, type ChildProcess } from 'node:child_process';
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

/** Engines must not outlive the orchestrator, even when it exits abruptly. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
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
    this.#child = spawn(opts.binary, [...opts.args], { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
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
        resolve(this.#exit);
      });
    });
  }

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

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3_000): Promise<EngineExit> {
    if (this.#exit) return this.#exit;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child.kill(signal);
  }
}

export function describeExit(exit: EngineExit): string {
  return exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${exit.code ?? 'unknown'}`;
}
