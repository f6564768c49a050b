/** `llorch dev` as a user runs it: a real process on a free port, stopped with SIGTERM. */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LLORCH_CLI = 'dist/src/cli/llorch.js';

export interface LlorchDev {
  readonly url: string;
  /** Its data directory (catalog, generated model, keys). */
  readonly dataDir: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then waits for it to exit (it stops its engines first); its exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `llorch dev --port 0 --data-dir <fresh> …args` and resolves once its pools have started
 * (`pools.started`), or rejects with its output.
 */
export async function startLlorchDev(args: readonly string[], timeoutMs = 90_000): Promise<LlorchDev> {
  const dataDir = await mkdtemp(join(tmpdir(), 'llorch-dev-'));
  const dev = spawn(process.execPath, [LLORCH_CLI, 'dev', '--port', '0', '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let url = '';
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`llorch dev did not become ready:\n${output}`)),
      timeoutMs,
    );
    const onData = (b: Buffer) => {
      output += b.toString('utf8');
      url ||= /listening on (http:\/\/[\d.:]+)/.exec(output)?.[1] ?? '';
      if (url && output.includes('"event":"pools.started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    dev.stdout.on('data', onData);
    dev.stderr.on('data', onData);
    dev.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`llorch dev exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    dataDir,
    output: () => output,
    async stop() {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGTERM');
      return exited;
    },
  };
}
