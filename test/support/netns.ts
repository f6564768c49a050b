/**
 * Separate "hosts" for tests: one Linux network namespace per host, each joined to the test's own
 * (root) namespace by a veth pair on a /24 of its own (10.77.N.0/24: .1 on the root side, .2 in
 * the host). A host reaches every root-side address (they are local there), so a server in the
 * root namespace on any .1 address is reachable from all hosts; hosts do not reach each other.
 * Needs root (or CAP_NET_ADMIN); `netnsUnavailable()` says why not, for a clear skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ip = (...args: string[]) => run('ip', args, { timeout: 10_000 });

export interface NetHost {
  /** The namespace name. */
  readonly ns: string;
  /** The host's address (the `.2` of its subnet). */
  readonly address: string;
  /** The root namespace's address on the host's link (the `.1`). */
  readonly gateway: string;
}

export interface NetLab {
  readonly hosts: readonly NetHost[];
  /** Starts `command` inside a host's namespace, in a process group of its own. */
  spawnIn(host: NetHost, command: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** Listening TCP sockets inside a host (`address:port`). */
  listening(host: NetHost): Promise<string[]>;
  /** Ends every process still inside the namespaces, then removes namespaces and links. */
  close(): Promise<void>;
}

/** Undefined when namespaces can be made here; otherwise why not (not root, no iproute2…). */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const probe = `llorch-probe-${randomBytes(3).toString('hex')}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `\`ip netns add\` is not permitted here (${firstLine(err)}); run as root to test separate hosts`;
  }
  await ip('netns', 'del', probe).catch(() => undefined);
  return undefined;
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr ?? e.message ?? String(err)).trim().split('\n')[0] ?? '';
}

/** Third octets already used on this machine (another lab, or a real network). */
async function usedSubnets(): Promise<Set<number>> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show']);
  const used = new Set<number>();
  for (const m of stdout.matchAll(/inet 10\.77\.(\d+)\./g)) used.add(Number(m[1]));
  return used;
}

/** Creates `count` hosts. On any failure what was made so far is removed again. */
export async function createLab(count: number): Promise<NetLab> {
  const tag = randomBytes(2).toString('hex');
  const used = await usedSubnets();
  const free = (n: number) => [...Array(count).keys()].every((i) => n + i < 255 && !used.has(n + i));
  let first: number | undefined;
  for (let tries = 0; tries < 100 && first === undefined; tries++) {
    const n = 10 + (randomBytes(1).readUInt8(0) % 230);
    if (free(n)) first = n;
  }
  if (first === undefined) throw new Error('no free 10.77.x.0/24 subnets for test hosts');
  const hosts: NetHost[] = [];
  const links: string[] = [];
  const children = new Set<ChildProcess>();

  const close = async () => {
    for (const h of hosts) {
      // Anything left in a namespace was started by this lab: end it by its pid.
      const pids = await ip('netns', 'pids', h.ns).then(
        (r) => r.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p)),
        () => [],
      );
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const h of hosts) await ip('netns', 'del', h.ns).catch(() => undefined);
    for (const l of links) await ip('link', 'del', l).catch(() => undefined);
  };

  try {
    for (let i = 0; i < count; i++) {
      const subnet = `10.77.${first + i}`;
      const ns = `llorch-${tag}-h${i}`;
      const outer = `lo${tag}h${i}o`;
      const inner = `lo${tag}h${i}i`;
      await ip('netns', 'add', ns);
      hosts.push({ ns, address: `${subnet}.2`, gateway: `${subnet}.1` });
      await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
      links.push(outer);
      await ip('link', 'set', inner, 'netns', ns);
      await ip('addr', 'add', `${subnet}.1/24`, 'dev', outer);
      await ip('link', 'set', outer, 'up');
      const inNs = (...args: string[]) => ip('-n', ns, ...args);
      await inNs('addr', 'add', `${subnet}.2/24`, 'dev', inner);
      await inNs('link', 'set', inner, 'up');
      await inNs('link', 'set', 'lo', 'up');
      // Every root-side address is reachable through this link (they are local there).
      await inNs('route', 'add', 'default', 'via', `${subnet}.1`);
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    hosts,
    spawnIn: (host, command, args, env) => {
      const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    listening: async (host) => {
      const { stdout } = await ip('netns', 'exec', host.ns, 'ss', '-Hltn');
      return stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[3])
        .filter((a): a is string => a !== undefined && a !== '');
    },
    close,
  };
}
