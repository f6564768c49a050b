/**
 * The chaos run behind `npm run chaos` and test/chaos/chaos.test.ts: a seeded random schedule of
 * task submissions (two tenants, two priorities, two pools), cancels and reconnecting stream
 * clients against a real `llorch serve` on simulated engines, while engine faults (SIGKILL,
 * SIGSTOP, crash, hang, slow tokens, OOM mid-stream, loading 503s, refusals), `kill -9` + restart
 * of the `llorch pool-managerd` node serving the second pool, and orchestrator `kill -9` +
 * restarts on the same data directory hit it. It returns its figures and every invariant that
 * broke.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import { mulberry32 } from '../../src/util/mulberry32.js';

const CLI = 'dist/src/cli/llorch.js';
const TENANT_KEYS = { alice: 'alice-data-key', bob: 'bob-data-key' } as const;
const TENANTS = ['alice', 'bob'] as const;
const NODE_ID = 'chaos-node';
const NODE_CREDENTIAL = 'chaos-node-credential-0123456789';
/** The node's engines require a key; a fixed one (from the environment) lets faults reach them. */
const NODE_ENGINE_KEY = 'chaos-node-engine-key-0123456789';
const LOCAL_POOL = 'chaos';
const NODE_POOL = 'chaos-node';

/** Options of one chaos run. */
export interface ChaosOptions {
  /** Tasks submitted. */
  readonly tasks: number;
  /** Seed of the schedule: the same seed draws the same schedule. */
  readonly seed: number;
  /** Orchestrator `kill -9` + restarts, spread over the run. */
  readonly restarts: number;
  /** `kill -9` + restarts of the pool-managerd node, at random points (default: `restarts`, at least 1). */
  readonly nodeLosses?: number;
  /** Clients with a task in flight at once. */
  readonly concurrency?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** What a chaos run saw; `violations` is empty when every invariant held. */
export interface ChaosReport {
  readonly seed: number;
  readonly tasks: number;
  readonly accepted: number;
  /** Submissions accepted only after backing off by the server's `X-Backoff-Ms` / `Retry-After`. */
  readonly acceptedAfterRetry: number;
  /** Final refusals (after the client's retries), by status and code. */
  readonly refused: Record<string, number>;
  readonly faults: Record<string, number>;
  readonly terminals: Record<string, number>;
  /** Accepted tasks by pool (local engines, the pool-managerd node). */
  readonly byPool: Record<string, number>;
  /** The terminal events of the node pool's tasks (a subset of `terminals`). */
  readonly nodeTerminals: Record<string, number>;
  readonly cancels: number;
  /** Cancels answered 204 for a task whose terminal event was in its log before the cancel was sent. */
  readonly cancelsAfterEnd: number;
  /**
   * Cancels whose task ended otherwise within the cancel's round trip (its terminal line between
   * a marker sent before the cancel and one sent after the 204): its own end just before the
   * cancel, or a cancel that ended it with something else than a canceled `end`. Not a violation
   * (the order is not observable), listed in `racing`; the figure should stay a small fraction.
   */
  readonly cancelsRacing: number;
  readonly racing: string[];
  /** Cancels sent on purpose after the client read the terminal event. */
  readonly lateCancels: number;
  /** Cancels whose log order could not be checked (a restart came between the 204 and the marker). */
  readonly uncheckedCancels: number;
  readonly reconnects: number;
  /** Tasks that ended before a crash and whose events were not journaled (404; resubmission 200). */
  readonly endedBeforeCrash: number;
  /** Worst time from a fault to the next successful completion, in ms. */
  readonly worstRecoveryMs: number;
  readonly durationMs: number;
  readonly violations: string[];
  /** Violations by invariant (the first word of each violation). */
  readonly violationKinds: Record<string, number>;
}

const prng = mulberry32;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const exited = (child: ChildProcess): Promise<unknown> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', r));

/** Polls `done` (every 50 ms) until true or `deadlineMs` passed; a generous deadline, not a margin. */
async function eventually(done: () => boolean, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (!done()) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\)\s+Z\s/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Simulated engine processes serving `modelId` (the run's own, so other runs are not touched). */
export function simEngines(modelId: string): { pid: number; port: number }[] {
  const out: { pid: number; port: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const script = argv[1] ?? '';
    const isEngine = /sim-(process|main)\.(js|ts)$/.test(script) || argv.includes('sim');
    const model = argv.indexOf('--model');
    if (!isEngine || model < 0 || argv[model + 1] !== modelId) continue;
    // Zombies keep their cmdline until reaped by their parent: they are not alive.
    if (!alive(Number(entry))) continue;
    out.push({ pid: Number(entry), port: Number(argv[argv.indexOf('--port') + 1]) });
  }
  return out;
}

/** A port free now, so every orchestrator life listens where the node's `orchestrator_url` points. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/**
 * The orchestrator's log, in its own order (pino writes each line synchronously): where each
 * task's terminal line and each marker request landed. Log order is processing order, so it
 * tells, without timing, whether a task ended before a request was handled.
 */
class LogIndex {
  /** `${life}:${task id}` → position of the task's terminal log line. */
  readonly terminal = new Map<string, number>();
  /** `${life}:${correlation id}` → position of a marker's refusal line. */
  readonly marks = new Map<string, number>();
  #seq = new Map<number, number>();

  line(life: number, text: string): void {
    const seq = (this.#seq.get(life) ?? 0) + 1;
    this.#seq.set(life, seq);
    const isTerminal = /"event":"task\.(completed|canceled|failed|evicted)"/.test(text);
    const isMark = text.includes('chaos-mark-');
    if (!isTerminal && !isMark) return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (isTerminal && typeof row['job_id'] === 'string') this.terminal.set(`${life}:${row['job_id']}`, seq);
    if (isMark && row['event'] === 'admission.rejected' && typeof row['correlation_id'] === 'string')
      this.marks.set(`${life}:${row['correlation_id']}`, seq);
  }
}

interface Serve {
  readonly child: ChildProcess;
  readonly url: string;
  readonly life: number;
}

/** Starts `llorch serve` and resolves once it listens and its pools started; every line goes to `onLine`. */
function serve(file: string, life: number, onLine: (line: string) => void): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let partial = '';
  let ready = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve not ready:\n${tail.slice(-4000)}`));
    }, 120_000);
    child.stdout?.on('data', (b: Buffer) => {
      const text = partial + b.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLine(l);
      if (ready) return;
      tail = (tail + text).slice(-100_000);
      const url = /listening on (http:\/\/[\d.:]+)/.exec(tail)?.[1];
      if (url && tail.includes('"event":"pools.started"')) {
        ready = true;
        clearTimeout(timer);
        resolve({ child, url, life });
      }
    });
    // Drained: a full pipe would block the server.
    child.stderr?.on('data', (b: Buffer) => {
      if (!ready) tail = (tail + b.toString('utf8')).slice(-100_000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`serve exited (${code}):\n${tail.slice(-4000)}`));
    });
  });
}

/** A marker request, answered: the life that logged it and its correlation id. */
interface Mark {
  readonly life: number;
  readonly cid: string;
}

interface Ev {
  readonly event: string;
  readonly id: number;
  readonly data: Record<string, unknown>;
}

/** Incremental SSE parser: feeds text, yields complete events. */
function sseParser(): (chunk: string) => Ev[] {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    const out: Ev[] = [];
    for (;;) {
      const end = buf.indexOf('\n\n');
      if (end < 0) return out;
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      let id = Number.NaN;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('id: ')) id = Number(line.slice(4));
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data === '') continue;
      out.push({ event, id, data: JSON.parse(data) as Record<string, unknown> });
    }
  };
}

const isTerminal = (e: Ev) => e.event === 'end' || e.event === 'error';
const terminalKind = (t: Ev): string =>
  t.event === 'end'
    ? t.data['canceled'] === true
      ? 'end_canceled'
      : 'end'
    : `error_${String(t.data['code'])}`;

/** How long a refused client waits before its next try: the server's own advice. */
function backoffMs(res: Response): number {
  const ms = Number(res.headers.get('x-backoff-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const s = Number(res.headers.get('retry-after'));
  return Number.isFinite(s) && s > 0 ? s * 1000 : 100;
}

/** Runs one chaos schedule end to end; never throws for a broken invariant (see `violations`). */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => undefined);
  const rand = prng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const began = Date.now();
  const violations: string[] = [];
  const violationKinds: Record<string, number> = {};
  const faults: Record<string, number> = {};
  const terminals: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const byPool: Record<string, number> = {};
  const nodeTerminals: Record<string, number> = {};
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  /** `kind` names the invariant; it leads the message so reports can group them. */
  const violate = (kind: string, what: string) => {
    bump(violationKinds, kind);
    violations.push(`${kind}: ${what}`);
  };
  const faultTimes: { kind: string; at: number }[] = [];
  const completions: number[] = [];
  let accepted = 0;
  let acceptedAfterRetry = 0;
  let cancels = 0;
  let cancelsAfterEnd = 0;
  let lateCancels = 0;
  let uncheckedCancels = 0;
  let cancelsRacing = 0;
  const racing: string[] = [];
  let reconnects = 0;
  let endedBeforeCrash = 0;

  const dir = await mkdtemp(join(tmpdir(), 'llorch-chaos-'));
  const tag = `${opts.seed}-${randomUUID().slice(0, 8)}`;
  const modelId = `chaos-${tag}`;
  const nodeModelId = `chaos-node-${tag}`;
  const port = await freePort();
  const timeouts = { idle_ms: 3_000, wall_ms: 120_000 };
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    stringify({
      profile: 'dev',
      listen: { host: '127.0.0.1', port },
      data_dir: dir,
      auth: {
        keys: TENANTS.map((t) => ({ id: t, tenant: t, sha256: sha256Hex(TENANT_KEYS[t]), scopes: ['data'] })),
      },
      nodes: [{ id: NODE_ID, sha256: sha256Hex(NODE_CREDENTIAL) }],
      // Generous: a loaded machine must not lose a healthy node; a killed one is lost after it.
      node_timeout_ms: 3_000,
      pools: [
        {
          id: LOCAL_POOL,
          engine: 'llamacpp',
          model: { id: modelId },
          ctx: 2048,
          replicas: 3,
          devices: 'cpu',
          // A hung or stopped engine is found by the idle watchdog; generous for a loaded machine.
          timeouts,
          launch: {
            worker: 'sim',
            parallel: 2,
            startup_timeout_ms: 60_000,
            health_interval_ms: 100,
            sim: { tokens_per_s: 400 },
          },
        },
        {
          id: NODE_POOL,
          engine: 'llamacpp',
          model: { id: nodeModelId },
          ctx: 2048,
          devices: 'cpu',
          hosts: [NODE_ID],
          timeouts,
          launch: { parallel: 2 },
        },
      ],
    }),
  );
  const nodeFile = join(dir, 'node.yaml');
  await writeFile(
    nodeFile,
    stringify({
      profile: 'dev',
      // Its own data_dir: run files let a restarted node reap what its predecessor left.
      data_dir: join(dir, 'node'),
      node: { id: NODE_ID, orchestrator_url: `http://127.0.0.1:${port}`, heartbeat_ms: 200 },
      pools: [
        {
          id: NODE_POOL,
          engine: 'llamacpp',
          model: { id: nodeModelId },
          ctx: 2048,
          replicas: 2,
          devices: 'cpu',
          launch: {
            worker: 'sim',
            parallel: 2,
            startup_timeout_ms: 60_000,
            health_interval_ms: 100,
            api_key_env: 'CHAOS_ENGINE_KEY',
            sim: { tokens_per_s: 400 },
          },
        },
      ],
    }),
  );

  const logs = new LogIndex();
  let life = 1;
  /** Orchestrator kills so far (counted before the signal: a read that spans one may break). */
  let kills = 0;
  // The current server; `up` resolves with it, and is replaced while it restarts.
  let up: Promise<Serve> = serve(file, life, (l) => logs.line(1, l));
  let current: Serve = await up;
  log(`serve up at ${current.url} (data dir ${dir})`);
  const server = async (): Promise<Serve> => up;
  let shuttingDown = false;

  const nodeLog = () => {
    try {
      return readFileSync(join(dir, 'node.log'), 'utf8').slice(-2_000);
    } catch {
      return '';
    }
  };
  /** The pool-managerd node: SIGKILLed alone, so its engines' watchdogs must end them. */
  const startNode = (): ChildProcess => {
    const child = spawn(process.execPath, [CLI, 'pool-managerd', '--config', nodeFile], {
      env: { ...process.env, LLORCH_NODE_CREDENTIAL: NODE_CREDENTIAL, CHAOS_ENGINE_KEY: NODE_ENGINE_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL' && !shuttingDown)
        violate('node_exit', `pool-managerd exited by itself (${code ?? signal}):\n${nodeLog()}`);
    });
    // Kept for a failed run's post-mortem; the data directory stays then.
    const out = createWriteStream(join(dir, 'node.log'), { flags: 'a' });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    return child;
  };
  let node = startNode();
  // The run starts once the node's engines run: the node pool is part of the fleet under test.
  await eventually(() => simEngines(nodeModelId).length >= 2 || node.exitCode !== null, 120_000);
  if (simEngines(nodeModelId).length < 2)
    violate(
      'node_start',
      `the pool-managerd node did not start its engines (exit ${node.exitCode}):\n${nodeLog()}`,
    );

  /** fetch against whichever server is up, retried across a restart; says which life answered. */
  async function requestAt(
    path: string,
    init: RequestInit & { key: string },
  ): Promise<{ res: Response; life: number }> {
    for (let attempt = 0; ; attempt++) {
      const s = await server();
      try {
        const res = await fetch(`${s.url}${path}`, {
          ...init,
          headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${init.key}` },
        });
        return { res, life: s.life };
      } catch (err) {
        if (attempt > 200) throw err;
        // The server died under us: wait for its successor (or its own restart to be noticed).
        await Promise.race([up.then(() => undefined), sleep(50)]);
      }
    }
  }
  const request = async (path: string, init: RequestInit & { key: string }) =>
    (await requestAt(path, init)).res;

  async function restart(): Promise<void> {
    const old = current;
    bump(faults, 'orchestrator_kill9');
    faultTimes.push({ kind: 'orchestrator_kill9', at: Date.now() });
    let release: (s: Serve) => void = () => undefined;
    up = new Promise<Serve>((r) => (release = r));
    kills++;
    old.child.kill('SIGKILL');
    await exited(old.child);
    const nextLife = life + 1;
    const next = await serve(file, nextLife, (l) => logs.line(nextLife, l));
    current = next;
    life = nextLife;
    release(next);
    log(`orchestrator restarted at ${next.url}`);
  }

  // The node's outage runs beside the schedule; the next loss (and the shutdown) wait for it.
  let nodeOutage: Promise<void> = Promise.resolve();
  async function nodeLoss(): Promise<void> {
    await nodeOutage;
    const engines = simEngines(nodeModelId).map((e) => e.pid);
    bump(faults, 'node_kill9');
    faultTimes.push({ kind: 'node_kill9', at: Date.now() });
    node.kill('SIGKILL');
    await exited(node);
    const outageMs = 500 + rand() * 5_000;
    nodeOutage = (async () => {
      // Before a successor could reap them: each engine must follow its dead daemon by itself.
      if (!(await eventually(() => !engines.some(alive), 30_000))) {
        const left = engines.filter(alive);
        violate('orphan', `engine(s) ${left.join(', ')} outlived their pool-managerd by 30 s`);
        for (const pid of left) process.kill(pid, 'SIGKILL');
      }
      // Scheduled, not synchronization: shorter and longer than node_timeout_ms.
      await sleep(outageMs);
      node = startNode();
      log('pool-managerd restarted');
    })();
  }

  const stopped = new Set<number>();
  async function engineFault(): Promise<void> {
    const engines = [
      ...simEngines(modelId).map((e) => ({ ...e, key: undefined })),
      ...simEngines(nodeModelId).map((e) => ({ ...e, key: NODE_ENGINE_KEY })),
    ];
    const engine = engines.length > 0 ? pick(engines) : undefined;
    const kind = pick(['sigkill', 'sigstop', 'crash', 'hang', 'slow', 'oom', 'loading', 'refuse'] as const);
    if (!engine) return;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (engine.key !== undefined) headers['authorization'] = `Bearer ${engine.key}`;
    const at = Date.now();
    try {
      if (kind === 'sigkill') process.kill(engine.pid, 'SIGKILL');
      else if (kind === 'sigstop') {
        process.kill(engine.pid, 'SIGSTOP');
        stopped.add(engine.pid);
        setTimeout(
          () => {
            stopped.delete(engine.pid);
            try {
              process.kill(engine.pid, 'SIGCONT');
            } catch {
              // Gone meanwhile (restarted or killed): nothing to resume.
            }
          },
          500 + rand() * 2_000,
        );
      } else {
        const body = {
          crash: { crash: 3 },
          hang: { hang: true },
          slow: { slow_token_ms: 20 },
          oom: { oom_after_tokens: 1 + Math.floor(rand() * 5) },
          loading: { loading_ms: 500 + Math.floor(rand() * 1_500) },
          refuse: { refuse: true },
        }[kind];
        const res = await fetch(`http://127.0.0.1:${engine.port}/__sim/faults`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
        });
        await res.arrayBuffer();
        if (!res.ok) return;
        if (kind !== 'crash' && kind !== 'loading') {
          // Faults are scheduled, not synchronization: each lasts a random while, then clears.
          setTimeout(
            () => {
              fetch(`http://127.0.0.1:${engine.port}/__sim/faults`, { method: 'POST', headers, body: '{}' })
                .then((r) => r.arrayBuffer())
                .catch(() => undefined);
            },
            300 + rand() * 2_000,
          );
        }
      }
    } catch {
      // The engine went away between the scan and the fault: not injected.
      return;
    }
    bump(faults, kind);
    faultTimes.push({ kind, at });
  }

  /**
   * A marker in the orchestrator's log: a refused submission logs its correlation id. Sent after
   * a response arrived, its line comes after everything the server did before that response.
   * Resolves once answered (undefined when it was not refused as expected); {@link locate} finds
   * its line.
   */
  async function marker(key: string): Promise<Mark | undefined> {
    const cid = `chaos-mark-${randomUUID()}`;
    const { res, life: at } = await requestAt('/v1/tasks', {
      key,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-correlation-id': cid },
      body: '{}',
    });
    await res.arrayBuffer();
    return res.status === 400 ? { life: at, cid } : undefined;
  }

  /** A marker's position in its life's log, or undefined when that life ended before it was read. */
  async function locate(m: Mark | undefined): Promise<{ life: number; seq: number } | undefined> {
    if (m === undefined) return undefined;
    const key = `${m.life}:${m.cid}`;
    await eventually(() => logs.marks.has(key) || life !== m.life, 30_000);
    const seq = logs.marks.get(key);
    return seq === undefined ? undefined : { life: m.life, seq };
  }

  /** The task's whole log as a fresh client reads it from the start, and the life that served it. */
  async function replay(
    id: string,
    key: string,
  ): Promise<{ life: number; status: number; events: Ev[]; complete: boolean; interrupted: boolean }> {
    const killsBefore = kills;
    const { res, life: at } = await requestAt(`/v1/tasks/${id}/stream`, { key });
    if (res.status !== 200 || !res.body) {
      await res.arrayBuffer();
      return { life: at, status: res.status, events: [], complete: false, interrupted: false };
    }
    const events: Ev[] = [];
    const parse = sseParser();
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const e of parse(decoder.decode(value, { stream: true }))) events.push(e);
        if (events.some(isTerminal)) break;
      }
    } catch {
      // Broken: a killed orchestrator explains it (below); anything else is a log without its end.
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    const complete = events.some(isTerminal);
    return {
      life: at,
      status: 200,
      events,
      complete,
      interrupted: !complete && kills !== killsBefore,
    };
  }

  const faultFree = Math.floor(opts.tasks * 0.9);
  /** One task's life: submit, read its stream across drops and restarts, maybe cancel. */
  async function client(n: number): Promise<void> {
    const tenant = pick(TENANTS);
    const key = TENANT_KEYS[tenant];
    const onNode = rand() < 0.4;
    const body = {
      task_id: randomUUID(),
      session_id: randomUUID(),
      workload: 'completion',
      model_ref: onNode ? nodeModelId : modelId,
      engine: 'llamacpp',
      ctx: 2048,
      priority: pick(['interactive', 'batch'] as const),
      prompt: `chaos task ${n}`,
      max_tokens: 2 + Math.floor(rand() * 60),
      deadline_ms: 3_600_000,
    };
    const cancelAfter = rand() < 0.15 ? Math.floor(rand() * 20) : -1;
    // Canceled tasks run well past their cancel point, so an ignored cancel shows as tokens and
    // an end logged after the marker (detection depends on speed; a verdict never does).
    if (cancelAfter >= 0) body.max_tokens = cancelAfter + 20 + Math.floor(rand() * 60);
    // Some clients cancel after reading the end: 204, and nothing changes (SPEC §2.3).
    const cancelLate = cancelAfter < 0 && rand() < 0.05;
    const dropAfter = rand() < 0.25 ? 1 + Math.floor(rand() * 15) : -1;
    const post = () =>
      request('/v1/tasks', {
        key,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    let res = await post();
    let answer = await res.text();
    // A refused client backs off as the server says and tries again (the same body and task_id:
    // a refused id is not used). The fault-free tail waits out unready pools, so every fault is
    // followed by completions.
    const tries = n >= faultFree ? 600 : 5;
    for (let t = 0; res.status === 503 && t < tries; t++) {
      await sleep(Math.min(backoffMs(res), n >= faultFree ? 1_000 : 5_000));
      res = await post();
      answer = await res.text();
      if (res.status === 202) acceptedAfterRetry++;
    }
    if (res.status !== 202 && res.status !== 200) {
      let code = String(res.status);
      try {
        code = `${res.status} ${String((JSON.parse(answer) as { code?: string }).code)}`;
      } catch {
        // Not the envelope: keep the status alone.
      }
      if (res.status >= 500 && res.status !== 503)
        violate('post_5xx', `task ${body.task_id}: POST answered ${code}`);
      bump(refused, code);
      return;
    }
    accepted++;
    bump(byPool, onNode ? NODE_POOL : LOCAL_POOL);
    const id = body.task_id;
    let lastId: number | undefined;
    /** The life whose log `lastId` belongs to. */
    let lastIdLife = life;
    let expectI = 0;
    let terminal: Ev | undefined;
    let terminalLife = 0;
    let terminalsSeen = 0;
    let seenTokens = 0;
    let dropped = false;
    /** The highest token id this client read, per life. */
    const maxTokenId = new Map<number, number>();
    /** What the cancel left: its life, the markers before it and after its 204, the log replayed after it. */
    let canceled:
      | {
          life: number;
          before: Mark | undefined;
          mark: Mark | undefined;
          log: Awaited<ReturnType<typeof replay>>;
        }
      | undefined;
    let cancelTried = false;
    // A compact trace of what this client read, quoted in its violations.
    const trace: string[] = [`life${life}`];
    const flag = (kind: string, what: string) => violate(kind, `task ${id}: ${what} [${trace.join(' ')}]`);

    reading: while (terminal === undefined) {
      const headers: Record<string, string> = {};
      if (lastId !== undefined) headers['last-event-id'] = String(lastId);
      let r: Response;
      let connLife: number;
      try {
        ({ res: r, life: connLife } = await requestAt(`/v1/tasks/${id}/stream`, { key, headers }));
      } catch (err) {
        violate('stream_unreachable', `task ${id}: ${String(err)}`);
        return;
      }
      // An id from an earlier life: the restarted task's ids must continue past it (a finding once:
      // ids started again at 1 and the new attempt's first events were skipped).
      const acrossRestart = lastId !== undefined && lastIdLife !== connLife;
      if (r.status === 404) {
        await r.arrayBuffer();
        // Events of tasks that ended before a crash are not journaled; the id must stay used.
        const again = await post();
        await again.arrayBuffer();
        if (again.status === 200) {
          endedBeforeCrash++;
          bump(terminals, 'ended_before_crash');
          break reading;
        }
        violate('id_forgotten', `task ${id}: stream 404 and resubmission answered ${again.status}`);
        return;
      }
      if (r.status !== 200 || !r.body) {
        violate('stream_status', `task ${id}: stream answered ${r.status}: ${await r.text()}`);
        return;
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      const parse = sseParser();
      let leave = false;
      try {
        while (!leave) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const e of parse(decoder.decode(value, { stream: true }))) {
            trace.push(e.event === 'token' ? `${e.id}:t${String(e.data['i'])}` : `${e.id}:${e.event}`);
            if (Number.isFinite(e.id)) {
              lastId = e.id;
              lastIdLife = connLife;
            }
            if (e.event === 'started') expectI = 0;
            if (e.event === 'token') {
              seenTokens++;
              maxTokenId.set(connLife, Math.max(maxTokenId.get(connLife) ?? 0, e.id));
              const i = Number(e.data['i']);
              if (i !== expectI)
                flag(
                  acrossRestart ? 'last_event_id_across_restart' : 'i_gap',
                  `token i=${i}, expected ${expectI}`,
                );
              expectI = i + 1;
            }
            if (isTerminal(e)) {
              terminalsSeen++;
              if (terminal === undefined) {
                terminal = e;
                terminalLife = connLife;
              }
              leave = true;
            }
            if (terminal === undefined && cancelAfter >= 0 && !cancelTried && seenTokens >= cancelAfter) {
              cancelTried = true;
              // A marker before the cancel too: a terminal line before it was surely there first.
              const before = await marker(key);
              const c = await requestAt(`/v1/tasks/${id}/cancel`, { key, method: 'POST' });
              await c.res.arrayBuffer();
              if (c.res.status !== 204)
                violate('cancel_status', `task ${id}: cancel answered ${c.res.status}`);
              else {
                trace.push(`CANCEL204@life${c.life}`);
                cancels++;
                // Both after the 204: what the server had done by then is before the marker, and
                // the log a fresh client reads holds everything appended before the 204.
                const mark = await marker(key);
                canceled = { life: c.life, before, mark, log: await replay(id, key) };
              }
            }
            if (terminal === undefined && !dropped && dropAfter >= 0 && seenTokens >= dropAfter) {
              dropped = true;
              leave = true;
            }
          }
        }
      } catch {
        // The connection broke (a restart): reconnect below with Last-Event-ID.
      } finally {
        await reader.cancel().catch(() => undefined);
      }
      if (terminal === undefined) {
        reconnects++;
        trace.push(`RECONNECT(${String(lastId)})@life${life}`);
      }
      if (shuttingDown && terminal === undefined) {
        violate('no_terminal', `task ${id}: no terminal event at shutdown`);
        return;
      }
    }
    if (canceled) await checkCancel(id, key, canceled, terminal, terminalLife, maxTokenId, flag);
    if (terminal === undefined) return;
    const t: Ev = terminal;
    if (cancelLate) await checkLateCancel(id, key, t, terminalLife, flag);
    if (terminalsSeen !== 1) violate('terminals', `task ${id}: ${terminalsSeen} terminal events`);
    const kind = terminalKind(t);
    bump(terminals, kind);
    if (onNode) bump(nodeTerminals, kind);
    // Every failure is typed (SPEC §2.2): a code of the error envelope and whether to retry.
    if (
      t.event === 'error' &&
      (!/^[A-Z][A-Z_]+$/.test(String(t.data['code'])) || typeof t.data['retriable'] !== 'boolean')
    )
      flag('untyped_error', `error event without a code or retriable: ${JSON.stringify(t.data)}`);
    if (kind === 'end') completions.push(Date.now());
    if (
      t.event === 'end' &&
      typeof t.data['tokens_out'] === 'number' &&
      t.data['tokens_out'] !== expectI &&
      lastId !== undefined
    )
      violate(
        'tokens_out',
        `task ${id}: end.tokens_out=${String(t.data['tokens_out'])} but the stream's last i+1 is ${expectI}`,
      );
  }

  /**
   * SPEC §2.3, exactly: once a cancel returned 204 no `token` is ever appended to the task's log,
   * and the terminal event is `end` with `canceled: true` unless the task had ended before the
   * cancel was handled. Tokens the client reads after the 204 are allowed when the server wrote
   * them before it (they sat in the socket): they are in the log a fresh client reads right after
   * the 204. Checked: that log holds the terminal event; every token the first client read, and
   * its terminal, are in it; the log read again once the client finished is the same (nothing
   * appended since); the terminal's log line comes before the marker sent after the 204 (the
   * cancel appends its `end` before answering, so a later line means the 204 left before the
   * terminal event: tokens could follow it, or a running task went on running); and a restart
   * never brings a canceled task back.
   */
  async function checkCancel(
    id: string,
    key: string,
    c: {
      life: number;
      before: Mark | undefined;
      mark: Mark | undefined;
      log: Awaited<ReturnType<typeof replay>>;
    },
    clientTerminal: Ev | undefined,
    clientTerminalLife: number,
    maxTokenId: ReadonlyMap<number, number>,
    flag: (kind: string, what: string) => void,
  ): Promise<void> {
    const r1 = c.log;
    if (r1.life !== c.life) {
      uncheckedCancels++;
      // A restart between the 204 and the replay: the task must not have come back.
      if (
        r1.events.some((e) => e.event === 'token') ||
        r1.events.some((e) => isTerminal(e) && e.event === 'end' && e.data['canceled'] !== true)
      )
        flag(
          'cancel_undone_by_restart',
          `after the cancel's 204 the restarted orchestrator ran the task again`,
        );
      return;
    }
    if (r1.status === 404) return; // Ended and forgotten within the retention window: nothing to compare.
    const t1 = r1.events.find(isTerminal);
    if (r1.interrupted) {
      uncheckedCancels++;
      return;
    }
    if (!r1.complete || t1 === undefined) {
      flag('cancel_no_terminal', `the log read after the cancel's 204 has no terminal event`);
      return;
    }
    const afterT1 = r1.events.filter((e) => e.id > t1.id);
    if (afterT1.length > 0) flag('token_after_cancel', `${afterT1.length} event(s) after the terminal event`);
    const read = maxTokenId.get(c.life);
    if (read !== undefined && read > t1.id)
      flag(
        'token_after_cancel',
        `the client read token id ${read} after the terminal id ${t1.id} of the log`,
      );
    if (clientTerminal !== undefined && clientTerminalLife === c.life && clientTerminal.id !== t1.id)
      flag('token_after_cancel', `the client's terminal id ${clientTerminal.id} is not the log's ${t1.id}`);
    if (clientTerminal !== undefined && terminalKind(clientTerminal) !== terminalKind(t1))
      flag(
        clientTerminalLife === c.life ? 'cancel_terminal_mismatch' : 'cancel_undone_by_restart',
        `the log after the 204 ended ${terminalKind(t1)}, the client read ${terminalKind(clientTerminal)} (life ${clientTerminalLife})`,
      );
    const canceledHere = terminalKind(t1) === 'end_canceled';
    // The terminal event is appended before the 204 is sent (a canceled end by the cancel itself,
    // any other by the task's own ending), so its log line precedes the marker's. Its line may
    // still be in the pipe: the log is read in order, so wait for it.
    const before = await locate(c.before);
    const mark = await locate(c.mark);
    if (mark !== undefined && mark.life === c.life) {
      await eventually(() => logs.terminal.has(`${c.life}:${id}`) || life !== c.life, 60_000);
      const ended = logs.terminal.get(`${c.life}:${id}`);
      if (life === c.life || ended !== undefined) {
        if (ended === undefined || ended > mark.seq)
          flag(
            canceledHere ? 'cancel_not_synchronous' : 'cancel_ignored',
            `terminal ${terminalKind(t1)} logged ${ended === undefined ? 'never' : 'after'} a marker sent after the cancel's 204`,
          );
        else if (!canceledHere) {
          // Logged before the 204's marker: before the cancel when also before the first marker;
          // between the two the order against the cancel itself is not observable (one round trip).
          if (before !== undefined && before.life === c.life && ended < before.seq) cancelsAfterEnd++;
          else {
            cancelsRacing++;
            racing.push(`${id} ${terminalKind(t1)}`);
          }
        }
      }
    } else uncheckedCancels++;
    const r2 = await replay(id, key);
    if (r2.life === c.life) {
      const tokens = (x: Ev[]) => x.filter((e) => e.event === 'token').length;
      if (r2.status !== 200 || !r2.complete) return; // Dropped after retention: nothing to compare.
      if (tokens(r2.events) !== tokens(r1.events) || r2.events.length !== r1.events.length)
        flag(
          'token_after_cancel',
          `the log grew after the cancel's 204: ${r1.events.length} events (${tokens(r1.events)} tokens) then ${r2.events.length} (${tokens(r2.events)})`,
        );
    } else if (r2.status === 200 && r2.events.some((e) => e.event === 'token'))
      flag('cancel_undone_by_restart', `after a restart the canceled task's log shows tokens again`);
  }

  /** A cancel after the end answers 204 and changes nothing: the log ends as the client read it. */
  async function checkLateCancel(
    id: string,
    key: string,
    t: Ev,
    tLife: number,
    flag: (kind: string, what: string) => void,
  ): Promise<void> {
    const c = await requestAt(`/v1/tasks/${id}/cancel`, { key, method: 'POST' });
    await c.res.arrayBuffer();
    lateCancels++;
    if (c.res.status !== 204) {
      flag('cancel_status', `a cancel after the end answered ${c.res.status}`);
      return;
    }
    const r = await replay(id, key);
    const end = r.events.find(isTerminal);
    if (r.life !== tLife || !r.complete || end === undefined) return;
    if (end.id !== t.id || terminalKind(end) !== terminalKind(t))
      flag('cancel_after_end_changed', `the log now ends ${terminalKind(end)} at id ${end.id}`);
  }

  // The schedule: faults between submissions, restarts spread evenly, node losses at seeded
  // random points, the last tenth fault-free so that every fault is followed by completions
  // (the recovery time).
  const concurrency = opts.concurrency ?? 8;
  const restartAt = new Set(
    Array.from({ length: opts.restarts }, (_, k) =>
      Math.floor(((k + 1) * opts.tasks * 0.9) / (opts.restarts + 1)),
    ),
  );
  const nodeLossAt = new Set<number>();
  const nodeLosses = opts.nodeLosses ?? Math.max(1, opts.restarts);
  for (let guard = 0; nodeLossAt.size < Math.min(nodeLosses, faultFree - 1) && guard < 10_000; guard++) {
    const at = 1 + Math.floor(rand() * (faultFree - 1));
    if (!restartAt.has(at)) nodeLossAt.add(at);
  }
  const inFlight = new Set<Promise<void>>();
  for (let n = 0; n < opts.tasks; n++) {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (restartAt.has(n)) await restart();
    else if (nodeLossAt.has(n)) await nodeLoss();
    else if (n < faultFree && rand() < 0.12) await engineFault();
    if (n === faultFree) await nodeOutage; // The tail runs with the whole fleet back.
    if (n > 0 && n % 100 === 0) log(`submitted ${n}/${opts.tasks}`);
    const p: Promise<void> = client(n)
      .catch((err: unknown) => {
        violate('client_error', `task #${n}: ${String(err)}`);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  // Each task resolves with its terminal event; a hang here is a lost terminal (per-task deadline).
  const lost = new Promise<void>((r) => setTimeout(r, 300_000).unref());
  const all = Promise.all(inFlight).then(() => 'done' as const);
  if ((await Promise.race([all, lost.then(() => 'lost' as const)])) === 'lost')
    violate('no_terminal', `${inFlight.size} task(s) without a terminal event after 300 s`);
  shuttingDown = true;

  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone already.
    }
  }
  await nodeOutage;
  node.kill('SIGTERM');
  await exited(node);
  const last = current;
  last.child.kill('SIGTERM');
  await exited(last.child);

  // No orphans: every engine of this run (every orchestrator and node life) is gone.
  const orphanDeadline = Date.now() + 30_000;
  const engines = () => [...simEngines(modelId), ...simEngines(nodeModelId)];
  let orphans = engines();
  while (orphans.length > 0 && Date.now() < orphanDeadline) {
    await sleep(100);
    orphans = engines();
  }
  if (orphans.length > 0) {
    violate('orphan', `engine process(es) alive after shutdown: ${orphans.map((o) => o.pid).join(', ')}`);
    for (const o of orphans) process.kill(o.pid, 'SIGKILL');
  }

  try {
    const db = new Database(join(dir, 'llorch.db'), { readonly: true, fileMustExist: true });
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    db.close();
    const verdict = rows.map((r) => r.integrity_check).join('; ');
    if (verdict !== 'ok') violate('sqlite', `integrity_check: ${verdict}`);
  } catch (err) {
    violate('sqlite', `integrity_check failed to run: ${String(err)}`);
  }

  completions.sort((a, b) => a - b);
  let worstRecoveryMs = 0;
  for (const f of faultTimes) {
    const next = completions.find((c) => c > f.at);
    if (next === undefined) violate('no_recovery', `no successful completion after the ${f.kind} fault`);
    else worstRecoveryMs = Math.max(worstRecoveryMs, next - f.at);
  }
  if (violations.length === 0) await rm(dir, { recursive: true, force: true });
  return {
    seed: opts.seed,
    tasks: opts.tasks,
    accepted,
    acceptedAfterRetry,
    refused,
    faults,
    terminals,
    byPool,
    nodeTerminals,
    cancels,
    cancelsAfterEnd,
    cancelsRacing,
    racing,
    lateCancels,
    uncheckedCancels,
    reconnects,
    endedBeforeCrash,
    worstRecoveryMs,
    durationMs: Date.now() - began,
    violations,
    violationKinds,
  };
}

/** The figures as printed lines. */
export function formatReport(r: ChaosReport): string {
  const kv = (m: Record<string, number>) =>
    Object.entries(m)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || '-';
  return [
    `chaos seed=${r.seed} tasks=${r.tasks} accepted=${r.accepted} (after retry ${r.acceptedAfterRetry}) duration=${(r.durationMs / 1000).toFixed(1)}s`,
    `accepted by pool: ${kv(r.byPool)}`,
    `refused: ${kv(r.refused)}`,
    `faults: ${kv(r.faults)}`,
    `terminal events: ${kv(r.terminals)}`,
    `  of which on the pool-managerd node: ${kv(r.nodeTerminals)}`,
    `cancels=${r.cancels} (after the end ${r.cancelsAfterEnd}; racing the end ${r.cancelsRacing}; after reading the end ${r.lateCancels}; unchecked ${r.uncheckedCancels}) reconnects=${r.reconnects} ended_before_crash=${r.endedBeforeCrash}`,
    ...(r.racing.length === 0 ? [] : [`cancels racing the end: ${r.racing.join(', ')}`]),
    `worst recovery (fault -> next successful completion): ${r.worstRecoveryMs} ms`,
    r.violations.length === 0
      ? 'violations: none'
      : `violations (${r.violations.length}; ${kv(r.violationKinds)}):\n  ${r.violations.join('\n  ')}`,
  ].join('\n');
}
