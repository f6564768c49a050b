/**
 * Vitest global setup: fails the run when a process started by a test outlives the suite.
 *
 * Every process a test starts (orchestrators, pool-managerds, engine watchdogs, engines,
 * simulators, PostgreSQL) inherits the environment of the test worker that started it, so a
 * marker set here, before the workers are forked, tags the whole tree, including processes that
 * were reparented to init after their parent died. At teardown `/proc/<pid>/environ` says which
 * processes still carry this run's marker. A previous run's survivors carry another id and are
 * not counted against this one.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

/** Name of the variable that tags every process started during one test run. */
export const TEST_RUN_ENV = 'LLORCH_TEST_RUN';

/** A process that still carries the marker: its id, parent and command line. */
export interface Survivor {
  readonly pid: number;
  readonly ppid: number;
  readonly cmdline: string;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    // Gone between listing and reading, or not ours to read: either way not a survivor we can name.
    return undefined;
  }
}

/**
 * Processes whose initial environment holds `name=value`, except `exceptPid` and its direct
 * children: the vitest main process, its pool workers and its esbuild service inherit the marker
 * from this process but are vitest's, not a test's; a test's processes are workers' children or,
 * once orphaned, init's.
 */
export function processesMarked(name: string, value: string, exceptPid: number): Survivor[] {
  const needle = `${name}=${value}`;
  const found: Survivor[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === exceptPid) continue;
    const environ = readOrUndefined(`/proc/${entry}/environ`);
    // A zombie's environ reads empty: it has exited and only waits to be reaped.
    if (environ === undefined || !environ.split('\0').includes(needle)) continue;
    const stat = readOrUndefined(`/proc/${entry}/stat`) ?? '';
    // Field 4 of stat, after the parenthesised command name (which may itself hold spaces).
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === exceptPid) continue;
    const cmdline = (readOrUndefined(`/proc/${entry}/cmdline`) ?? '').split('\0').join(' ').trim();
    found.push({ pid, ppid, cmdline });
  }
  return found;
}

const GRACE_MS = 10_000;

export default function setup(): () => Promise<void> {
  // A run started inside another (a test that runs vitest) leaves the judging to the outer run,
  // whose own processes carry the same marker and would count against this one.
  if (process.env[TEST_RUN_ENV] !== undefined) return async () => undefined;
  const run = randomUUID();
  process.env[TEST_RUN_ENV] = run;
  return async () => {
    if (process.platform !== 'linux') return;
    // A child signalled by the last afterAll may still be exiting: give the kernel a moment to
    // drop it before calling it a leak. Polling /proc is the only exit notice for a process that
    // is not our child.
    const until = Date.now() + GRACE_MS;
    let survivors = processesMarked(TEST_RUN_ENV, run, process.pid);
    while (survivors.length > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      survivors = processesMarked(TEST_RUN_ENV, run, process.pid);
    }
    if (survivors.length === 0) return;
    // Reported first, then ended by id so the machine is clean for the next run; the run still fails.
    for (const s of survivors) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    const list = survivors.map((s) => `  pid ${s.pid} (parent ${s.ppid}): ${s.cmdline}`).join('\n');
    throw new Error(
      `${survivors.length} process(es) started by tests were still running after the suite ended ` +
        `(now killed):\n${list}`,
    );
  };
}
