/**
 * SIGTERM/SIGINT for the daemons (`llorch serve`, `llorch dev`, `llorch pool-managerd`), SPEC §5
 * and §17 §5: the first signal starts the graceful stop, and a hard timer ends the process
 * `drainMs + boundMs` later whatever hangs (a client holding a connection, a store or trace
 * exporter that does not answer); a second signal exits at once. Both forced paths kill every
 * engine process group first, so no engine outlives the daemon.
 */
import { constants } from 'node:os';
import { killAllEngines } from '../pool/engine-process.js';
import type { Logger } from '../util/logger.js';

/**
 * What the stop may take beyond the drain deadline: aborting the tasks still running, closing
 * HTTP and the store, and stopping the engines (SIGTERM, SIGKILL after 3 s).
 */
export const SHUTDOWN_BOUND_MS = 5_000;

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

export interface ShutdownSignalOptions {
  readonly logger: Logger;
  /** The daemon, for the log (`orchestratord`, `pool-managerd`). */
  readonly name: string;
  /** The configured drain deadline (`shutdown.drain_ms`). */
  readonly drainMs: number;
  /** The graceful stop; it is given `drainMs` and should end within it plus `boundMs`. */
  readonly stop: (drainMs: number) => Promise<void>;
  /** Slack after the drain deadline before the hard exit. Default SHUTDOWN_BOUND_MS. */
  readonly boundMs?: number;
}

export interface ShutdownSignals {
  /** True once a signal started the shutdown. */
  readonly stopping: boolean;
  /** Removes the handlers (an embedding that stops on its own). */
  dispose(): void;
}

/** Installs the handlers. Call it before the daemon starts, so a signal during startup is bounded too. */
export function handleShutdownSignals(o: ShutdownSignalOptions): ShutdownSignals {
  const bound = o.boundMs ?? SHUTDOWN_BOUND_MS;
  let stopping = false;
  const exitNow = (code: number, event: string, message: string, fields: Record<string, unknown>) => {
    const engines = killAllEngines();
    o.logger.warn({ event, engine_groups_killed: engines, exit_code: code, ...fields }, message);
    process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      exitNow(
        128 + constants.signals[signal],
        'shutdown.immediate',
        `${o.name}: second ${signal}, exiting now`,
        { signal },
      );
      return;
    }
    stopping = true;
    const hardMs = o.drainMs + bound;
    o.logger.info(
      { event: 'shutdown', signal, drain_ms: o.drainMs, hard_deadline_ms: hardMs },
      `${o.name}: ${signal}, shutting down (drain ${o.drainMs} ms, exit within ${hardMs} ms; a second signal exits at once)`,
    );
    // Referenced on purpose: it must fire even when nothing else is left to run.
    setTimeout(
      () =>
        exitNow(1, 'shutdown.forced', `${o.name}: graceful stop did not finish within ${hardMs} ms`, {
          hard_deadline_ms: hardMs,
        }),
      hardMs,
    );
    o.stop(o.drainMs).then(
      () => {
        o.logger.info({ event: 'shutdown.exit', exit_code: 0 }, `${o.name} exiting`);
        process.exit(0);
      },
      (err: unknown) =>
        exitNow(1, 'shutdown.failed', `${o.name}: graceful stop failed: ${(err as Error).message}`, {}),
    );
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    get stopping() {
      return stopping;
    },
    dispose: () => {
      for (const s of SIGNALS) process.removeListener(s, onSignal);
    },
  };
}
