#!/usr/bin/env node
/**
 * Runs one engine so that it cannot outlive its supervisor (SPEC §5): `engine-watchdog BINARY
 * ARGS...`. The supervisor starts this script as the leader of a new process group and holds the
 * write end of its stdin; the engine runs in the same group with the same stdout and stderr.
 *
 * The supervisor's death is seen as end-of-file on stdin. The kernel closes that pipe whenever
 * the supervisor dies, `kill -9` included, and at once, whereas a `process.ppid` change can be
 * missed under a subreaper and needs polling. The poll is kept as a second line for a supervisor
 * that leaked the pipe to another process. Either way the whole group is ended: SIGTERM, then
 * SIGKILL after a grace period.
 *
 * Otherwise the engine's exit is passed on unchanged (same code, or the same signal re-raised
 * here), because the supervisor classifies failures by it.
 *
 * When `$LLORCH_WATCHDOG_REPORT_FD` names an inherited pipe, the engine's pid is written there
 * (`engine <pid>`) once it is spawned: the supervisor records it in the engine's run file.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { constants } from 'node:os';

const ORPHAN_GRACE_MS = 3_000;
const PPID_POLL_MS = 1_000;
// The supervisor signals the whole group; the engine acts on these and this process follows its
// exit, so it must not die of them first.
const RELAYED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

const [binary, ...args] = process.argv.slice(2);
if (binary === undefined) {
  process.stderr.write('usage: engine-watchdog BINARY [ARGS...]\n');
  process.exit(2);
}

const parentAtStart = process.ppid;
let orphaned = false;

const killGroup = (signal: NodeJS.Signals): void => {
  try {
    process.kill(-process.pid, signal);
  } catch {
    // The group is already gone.
  }
};

const noop = (): void => undefined;
for (const s of RELAYED) process.on(s, noop);

// Same name as WATCHDOG_REPORT_FD_ENV in engine-process.ts (not imported: this script stays small).
const reportFd = Number(process.env['LLORCH_WATCHDOG_REPORT_FD'] ?? NaN);
delete process.env['LLORCH_WATCHDOG_REPORT_FD'];

const engine = spawn(binary, args, { stdio: ['ignore', 'inherit', 'inherit'] });

if (Number.isInteger(reportFd) && reportFd > 2 && engine.pid !== undefined) {
  try {
    writeSync(reportFd, `engine ${engine.pid}\n`);
    closeSync(reportFd);
  } catch {
    // No supervisor listening: the report is only for its run file.
  }
}

engine.on('error', (err) => {
  // Same wording as a failed spawn in the supervisor, so the cause reads the same.
  process.stderr.write(`spawn failed: ${err.message}\n`);
  process.exit(127);
});

engine.on('exit', (code, signal) => {
  if (orphaned) {
    // Nobody is waiting for the exit status: take any of the engine's leftovers along.
    killGroup('SIGKILL');
    return;
  }
  if (signal === null) process.exit(code ?? 1);
  for (const s of RELAYED) process.removeListener(s, noop);
  process.kill(process.pid, signal);
  // A signal Node ignores or handles itself (SIGPIPE, SIGUSR1) does not end this process: fall
  // back to the shell's convention for "killed by a signal".
  setTimeout(() => process.exit(128 + constants.signals[signal]), 1_000).unref();
});

const orphan = (): void => {
  if (orphaned) return;
  orphaned = true;
  killGroup('SIGTERM');
  setTimeout(() => killGroup('SIGKILL'), ORPHAN_GRACE_MS);
};

process.stdin.on('end', orphan);
process.stdin.on('error', orphan);
process.stdin.on('close', orphan);
process.stdin.resume();

setInterval(() => {
  if (process.ppid !== parentAtStart) orphan();
}, PPID_POLL_MS).unref();
