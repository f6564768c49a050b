/**
 * The chaos run behind `npm run chaos` and test/chaos/chaos.test.ts: a seeded random schedule of
 * task submissions (two tenants, two priorities), cancels and reconnecting stream clients against
 * a real `llorch serve` on simulated engines, while engine faults (SIGKILL, SIGSTOP, crash, hang,
 * slow tokens, OOM mid-stream, loading 503s, refusals) and orchestrator `kill -9` + restarts on
 * the same data directory hit it. It returns its figures and every invariant that broke.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import { mulberry32 } from '../../src/util/mulberry32.js';

const CLI = 'dist/src/cli/llorch.js';
const TENANT_KEYS = { alice: 'alice-data-key', bob: 'bob-data-key' } as const;
const TENANTS = ['alice', 'bob'] as const;

/** Options of one chaos run. */
export interface ChaosOptions {
  /** Tasks submitted. */
  readonly tasks: number;
  /** Seed of the schedule: the same seed draws the same schedule. */
  readonly seed: number;
  /** Orchestrator `kill -9` + restarts, spread over the run. */
  readonly restarts: number;
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
  readonly refused: Record<string, number>;
  readonly faults: Record<string, number>;
  readonly terminals: Record<string, number>;
  readonly cancels: number;
  readonly reconnects: number;
  /** Tasks that ended before a crash and whose events were not journaled (404; resubmission 200). */
  readonly endedBeforeCrash: number;
  /** Worst time from a fault to the next successful completion, in ms. */
  readonly worstRecoveryMs: number;
  readonly durationMs: number;
  readonly violations: string[];
}

const prng = mulberry32;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const exited = (child: ChildProcess): Promise<unknown> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', r));

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
    try {
      if (/\)\s+Z\s/.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
    } catch {
      continue;
    }
    out.push({ pid: Number(entry), port: Number(argv[argv.indexOf('--port') + 1]) });
  }
  return out;
}

interface Serve {
  readonly child: ChildProcess;
  readonly url: string;
}

/** Starts `llorch serve` and resolves once it listens and its pools started. */
function serve(file: string): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve not ready:\n${out.slice(-4000)}`));
    }, 120_000);
    const onData = (b: Buffer) => {
      out += b.toString('utf8');
      if (out.length > 200_000) out = out.slice(-100_000);
      const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1];
      if (url && out.includes('"event":"pools.started"')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        // Keep draining: a full pipe would block the server.
        child.stdout?.resume();
        child.stderr?.resume();
        resolve({ child, url });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}):\n${out.slice(-4000)}`));
    });
  });
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

/** Runs one chaos schedule end to end; never throws for a broken invariant (see `violations`). */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => undefined);
  const rand = prng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const began = Date.now();
  const violations: string[] = [];
  const faults: Record<string, number> = {};
  const terminals: Record<string, number> = {};
  const refused: Record<string, number> = {};
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
  const faultTimes: { kind: string; at: number }[] = [];
  const completions: number[] = [];
  let accepted = 0;
  let cancels = 0;
  let reconnects = 0;
  let endedBeforeCrash = 0;

  const dir = await mkdtemp(join(tmpdir(), 'llorch-chaos-'));
  const modelId = `chaos-${opts.seed}-${randomUUID().slice(0, 8)}`;
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    stringify({
      profile: 'dev',
      listen: { host: '127.0.0.1', port: 0 },
      data_dir: dir,
      auth: {
        keys: TENANTS.map((t) => ({ id: t, tenant: t, sha256: sha256Hex(TENANT_KEYS[t]), scopes: ['data'] })),
      },
      pools: [
        {
          id: 'chaos',
          engine: 'llamacpp',
          model: { id: modelId },
          ctx: 2048,
          replicas: 2,
          devices: 'cpu',
          // A hung or stopped engine is found by the idle watchdog; generous for a loaded machine.
          timeouts: { idle_ms: 3_000, wall_ms: 120_000 },
          launch: {
            worker: 'sim',
            parallel: 2,
            startup_timeout_ms: 60_000,
            health_interval_ms: 100,
            sim: { tokens_per_s: 400 },
          },
        },
      ],
    }),
  );

  // The current server; `up` resolves with it, and is replaced while it restarts.
  let up: Promise<Serve> = serve(file);
  let current: Serve = await up;
  log(`serve up at ${current.url} (data dir ${dir})`);
  const server = async (): Promise<Serve> => up;
  let shuttingDown = false;

  /** fetch against whichever server is up, retried across a restart. */
  async function request(path: string, init: RequestInit & { key: string }): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const s = await server();
      try {
        return await fetch(`${s.url}${path}`, {
          ...init,
          headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${init.key}` },
        });
      } catch (err) {
        if (attempt > 200) throw err;
        // The server died under us: wait for its successor (or its own restart to be noticed).
        await Promise.race([up.then(() => undefined), sleep(50)]);
      }
    }
  }

  let life = 1;
  async function restart(): Promise<void> {
    const old = current;
    bump(faults, 'orchestrator_kill9');
    faultTimes.push({ kind: 'orchestrator_kill9', at: Date.now() });
    let release: (s: Serve) => void = () => undefined;
    up = new Promise<Serve>((r) => (release = r));
    old.child.kill('SIGKILL');
    await exited(old.child);
    const next = await serve(file);
    current = next;
    life++;
    release(next);
    log(`orchestrator restarted at ${next.url}`);
  }

  const stopped = new Set<number>();
  async function engineFault(): Promise<void> {
    const engines = simEngines(modelId);
    const engine = engines.length > 0 ? pick(engines) : undefined;
    const kind = pick(['sigkill', 'sigstop', 'crash', 'hang', 'slow', 'oom', 'loading', 'refuse'] as const);
    if (!engine) return;
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
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        await res.arrayBuffer();
        if (kind !== 'crash' && kind !== 'loading') {
          // Faults are scheduled, not synchronization: each lasts a random while, then clears.
          setTimeout(
            () => {
              fetch(`http://127.0.0.1:${engine.port}/__sim/faults`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: '{}',
              })
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

  const faultFree = Math.floor(opts.tasks * 0.9);
  /** One task's life: submit, read its stream across drops and restarts, maybe cancel. */
  async function client(n: number): Promise<void> {
    const tenant = pick(TENANTS);
    const key = TENANT_KEYS[tenant];
    const body = {
      task_id: randomUUID(),
      session_id: randomUUID(),
      workload: 'completion',
      model_ref: modelId,
      engine: 'llamacpp',
      ctx: 2048,
      priority: pick(['interactive', 'batch'] as const),
      prompt: `chaos task ${n}`,
      max_tokens: 2 + Math.floor(rand() * 60),
      deadline_ms: 3_600_000,
    };
    const cancelAfter = rand() < 0.15 ? Math.floor(rand() * 20) : -1;
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
    // The fault-free tail waits out unready pools, so every fault is followed by completions.
    for (let tries = 0; res.status === 503 && n >= faultFree && tries < 600; tries++) {
      await sleep(100);
      res = await post();
      answer = await res.text();
    }
    if (res.status !== 202 && res.status !== 200) {
      let code = String(res.status);
      try {
        code = `${res.status} ${String((JSON.parse(answer) as { code?: string }).code)}`;
      } catch {
        // Not the envelope: keep the status alone.
      }
      if (res.status >= 500 && res.status !== 503)
        violations.push(`task ${body.task_id}: POST answered ${code}`);
      bump(refused, code);
      return;
    }
    accepted++;
    const id = body.task_id;
    let lastId: number | undefined;
    let expectI = 0;
    let terminal: Ev | undefined;
    let terminalsSeen = 0;
    let cancel204At: number | undefined;
    let tokensAfterCancel = 0;
    let seenTokens = 0;
    let dropped = false;
    // A compact trace of what this client read, quoted in its violations.
    const trace: string[] = [`life${life}`];
    const flag = (what: string) => violations.push(`task ${id}: ${what} [${trace.join(' ')}]`);

    while (terminal === undefined) {
      const headers: Record<string, string> = {};
      if (lastId !== undefined) headers['last-event-id'] = String(lastId);
      let r: Response;
      try {
        r = await request(`/v1/tasks/${id}/stream`, { key, headers });
      } catch (err) {
        violations.push(`task ${id}: stream unreachable: ${String(err)}`);
        return;
      }
      if (r.status === 404) {
        await r.arrayBuffer();
        // Events of tasks that ended before a crash are not journaled; the id must stay used.
        const again = await post();
        await again.arrayBuffer();
        if (again.status === 200) {
          endedBeforeCrash++;
          bump(terminals, 'ended_before_crash');
          return;
        }
        violations.push(`task ${id}: stream 404 and resubmission answered ${again.status}`);
        return;
      }
      if (r.status !== 200 || !r.body) {
        violations.push(`task ${id}: stream answered ${r.status}: ${await r.text()}`);
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
            if (Number.isFinite(e.id)) lastId = e.id;
            if (e.event === 'started') expectI = 0;
            if (e.event === 'token') {
              seenTokens++;
              const i = Number(e.data['i']);
              if (i !== expectI) flag(`token i=${i}, expected ${expectI}`);
              expectI = i + 1;
              if (cancel204At !== undefined) tokensAfterCancel++;
            }
            if (e.event === 'end' || e.event === 'error') {
              terminalsSeen++;
              terminal ??= e;
              leave = true;
            }
            if (
              terminal === undefined &&
              cancelAfter >= 0 &&
              cancel204At === undefined &&
              seenTokens >= cancelAfter
            ) {
              const c = await request(`/v1/tasks/${id}/cancel`, { key, method: 'POST' });
              await c.arrayBuffer();
              if (c.status !== 204) violations.push(`task ${id}: cancel answered ${c.status}`);
              else {
                trace.push(`CANCEL204@life${life}`);
                cancels++;
                cancel204At = Date.now();
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
        violations.push(`task ${id}: no terminal event at shutdown`);
        return;
      }
    }
    const t: Ev = terminal;
    if (terminalsSeen !== 1) violations.push(`task ${id}: ${terminalsSeen} terminal events`);
    const kind =
      t.event === 'end'
        ? t.data['canceled'] === true
          ? 'end_canceled'
          : 'end'
        : `error_${String(t.data['code'])}`;
    bump(terminals, kind);
    if (kind === 'end') completions.push(Date.now());
    if (
      cancel204At !== undefined &&
      t.event === 'end' &&
      t.data['canceled'] !== true &&
      tokensAfterCancel > 0
    )
      flag(`${tokensAfterCancel} token(s) after the cancel's 204 and an uncanceled end`);
    if (
      t.event === 'end' &&
      typeof t.data['tokens_out'] === 'number' &&
      t.data['tokens_out'] !== expectI &&
      lastId !== undefined
    )
      violations.push(
        `task ${id}: end.tokens_out=${String(t.data['tokens_out'])} but the stream's last i+1 is ${expectI}`,
      );
  }

  // The schedule: faults between submissions, restarts spread evenly, the last tenth fault-free
  // so that every fault is followed by completions (the recovery time).
  const concurrency = opts.concurrency ?? 8;
  const restartAt = new Set(
    Array.from({ length: opts.restarts }, (_, k) =>
      Math.floor(((k + 1) * opts.tasks * 0.9) / (opts.restarts + 1)),
    ),
  );
  const inFlight = new Set<Promise<void>>();
  for (let n = 0; n < opts.tasks; n++) {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (restartAt.has(n)) await restart();
    else if (n < faultFree && rand() < 0.12) await engineFault();
    if (n > 0 && n % 100 === 0) log(`submitted ${n}/${opts.tasks}`);
    const p: Promise<void> = client(n)
      .catch((err: unknown) => {
        violations.push(`task #${n}: ${String(err)}`);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  // Each task resolves with its terminal event; a hang here is a lost terminal (per-task deadline).
  const lost = new Promise<void>((r) => setTimeout(r, 300_000));
  const all = Promise.all(inFlight).then(() => 'done' as const);
  if ((await Promise.race([all, lost.then(() => 'lost' as const)])) === 'lost')
    violations.push(`${inFlight.size} task(s) without a terminal event after 300 s`);
  shuttingDown = true;

  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone already.
    }
  }
  const last = current;
  last.child.kill('SIGTERM');
  await exited(last.child);

  // No orphans: every engine of this run (both orchestrator lives) is gone.
  const orphanDeadline = Date.now() + 30_000;
  let orphans = simEngines(modelId);
  while (orphans.length > 0 && Date.now() < orphanDeadline) {
    await sleep(100);
    orphans = simEngines(modelId);
  }
  if (orphans.length > 0) {
    violations.push(`orphan engine process(es): ${orphans.map((o) => o.pid).join(', ')}`);
    for (const o of orphans) process.kill(o.pid, 'SIGKILL');
  }

  try {
    const db = new Database(join(dir, 'llorch.db'), { readonly: true, fileMustExist: true });
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    db.close();
    const verdict = rows.map((r) => r.integrity_check).join('; ');
    if (verdict !== 'ok') violations.push(`SQLite integrity_check: ${verdict}`);
  } catch (err) {
    violations.push(`SQLite integrity_check failed to run: ${String(err)}`);
  }

  completions.sort((a, b) => a - b);
  let worstRecoveryMs = 0;
  for (const f of faultTimes) {
    const next = completions.find((c) => c > f.at);
    if (next === undefined) violations.push(`no successful completion after the ${f.kind} fault`);
    else worstRecoveryMs = Math.max(worstRecoveryMs, next - f.at);
  }
  if (violations.length === 0) await rm(dir, { recursive: true, force: true });
  return {
    seed: opts.seed,
    tasks: opts.tasks,
    accepted,
    refused,
    faults,
    terminals,
    cancels,
    reconnects,
    endedBeforeCrash,
    worstRecoveryMs,
    durationMs: Date.now() - began,
    violations,
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
    `chaos seed=${r.seed} tasks=${r.tasks} accepted=${r.accepted} duration=${(r.durationMs / 1000).toFixed(1)}s`,
    `refused: ${kv(r.refused)}`,
    `faults: ${kv(r.faults)}`,
    `terminal events: ${kv(r.terminals)}`,
    `cancels=${r.cancels} reconnects=${r.reconnects} ended_before_crash=${r.endedBeforeCrash}`,
    `worst recovery (fault -> next successful completion): ${r.worstRecoveryMs} ms`,
    r.violations.length === 0
      ? 'violations: none'
      : `violations (${r.violations.length}):\n  ${r.violations.join('\n  ')}`,
  ].join('\n');
}
