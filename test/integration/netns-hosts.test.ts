/**
 * Multi-host production on separate network hosts (SPEC §5, §11, ORCH-1101). The orchestrator runs
 * `llorch serve` in the prod profile on a "control-plane host" without GPUs (the test's own network
 * namespace; its nvidia-smi does not exist), and two GPU hosts run `llorch pool-managerd` in
 * network namespaces of their own, each on its own address, each with a stand-in nvidia-smi and
 * simulated engines bound to the host's address: vLLM on both, llama.cpp on host A, and Triton
 * (which has no API key) behind pool-managerd's guard on host B. Proven here: registration over
 * the veth links, placement across both hosts, a task streamed from each host and through each
 * kind of engine access, and that no engine port on either host answers a request from the
 * orchestrator's namespace without its credential.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import { KEYS, TEST_CTX, TEST_KEYS, call, readStream, task, until } from '../support/harness.js';
import { createLab, netnsUnavailable, type NetHost, type NetLab } from '../support/netns.js';

const CLI = resolve('dist/src/cli/llorch.js');
const NVIDIA_SMI = resolve('test/fixtures/nvidia-smi/nvidia-smi');
const GPUS_CSV = resolve('test/fixtures/nvidia-smi/two-gpus.csv');
const CRED = { 'gpu-a': 'cred-a-0f3c1b', 'gpu-b': 'cred-b-9d2e7a' } as const;
type NodeId = keyof typeof CRED;

const unavailable = await netnsUnavailable();
if (unavailable !== undefined)
  console.warn(`netns-hosts: SKIPPED: ${unavailable} (separate hosts need network namespaces)`);

let lab: NetLab | undefined;
let dir: string;
let url: string;
const procs: ChildProcess[] = [];
const hostOf = new Map<NodeId, NetHost>();

/** Ends a process group politely (SIGTERM: pool-managerd stops its engines), then for sure. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), 15_000).unref());
  if ((await Promise.race([exited, timer])) === 'late') {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await exited;
  }
}

/** Spawns `llorch serve` here (the control-plane host) and resolves with its URL. */
async function serve(config: object, name: string): Promise<{ child: ChildProcess; url: Promise<string> }> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify(config));
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  procs.push(child);
  const err: string[] = [];
  child.stderr?.on('data', (d: Buffer) => err.push(d.toString()));
  const listening = new Promise<string>((resolveUrl, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { event?: string; url?: string };
        if (rec.event === 'http.listening' && rec.url !== undefined) resolveUrl(rec.url);
      } catch {
        // not a log record
      }
    });
    // `close`, not `exit`: by then stderr has been read to its end.
    child.once('close', (code) => reject(new Error(`llorch serve exited ${code}: ${err.join('')}`)));
  });
  return { child, url: listening };
}

async function startNode(id: NodeId, pools: object[]): Promise<void> {
  const host = hostOf.get(id)!;
  const file = join(dir, `${id}.yaml`);
  // Host A reads its node credential from the environment, host B from a file (SPEC §17 §11).
  const fromFile = id === 'gpu-b';
  if (fromFile) await writeFile(join(dir, `${id}.credential`), `${CRED[id]}\n`, { mode: 0o600 });
  await writeFile(
    file,
    stringify({
      profile: 'prod',
      node: {
        id,
        orchestrator_url: url,
        heartbeat_ms: 200,
        ...(fromFile ? { credential_file: `${id}.credential` } : {}),
      },
      data_dir: join(dir, id),
      engines: { nvidia_smi_path: NVIDIA_SMI },
      pools,
    }),
  );
  const child = lab!.spawnIn(host, process.execPath, [CLI, 'pool-managerd', '--config', file], {
    ...process.env,
    ...(fromFile ? {} : { LLORCH_NODE_CREDENTIAL: CRED[id] }),
    FAKE_NVIDIA_SMI_FILE: GPUS_CSV,
  });
  child.stdout?.resume();
  child.stderr?.resume();
  procs.push(child);
}

/** A simulated pool on a host, its engines bound to the host's own address. */
const simPool = (id: string, engine: string, host: NetHost) => ({
  id,
  engine,
  model: { id },
  ctx: TEST_CTX,
  devices: [0],
  launch: {
    worker: 'sim',
    host: host.address,
    parallel: 1,
    health_interval_ms: 200,
    startup_timeout_ms: 60_000,
    sim: { tokens_per_s: 100 },
  },
});
const remotePool = (id: string, engine: string, hosts: NodeId[]) => ({
  id,
  engine,
  model: { id },
  ctx: TEST_CTX,
  devices: [0],
  hosts,
  launch: { parallel: 1 },
});

beforeAll(async () => {
  if (unavailable !== undefined) return;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  dir = await mkdtemp(join(tmpdir(), 'llorch-netns-'));
  lab = await createLab(2);
  const [a, b] = lab.hosts as [NetHost, NetHost];
  hostOf.set('gpu-a', a).set('gpu-b', b);
  await Promise.all(['gpu-a', 'gpu-b', 'orch'].map((d) => mkdir(join(dir, d))));
  const orchestrator = await serve(
    {
      profile: 'prod',
      // Host A's link; host B reaches it too (an address of this namespace).
      listen: { host: a.gateway, port: 0 },
      auth: { keys: TEST_KEYS },
      nodes: Object.entries(CRED).map(([id, c]) => ({ id, sha256: sha256Hex(c) })),
      node_timeout_ms: 5_000,
      data_dir: join(dir, 'orch'),
      // The control-plane host has no GPU and no nvidia-smi at all.
      engines: { nvidia_smi_path: join(dir, 'no-such-nvidia-smi') },
      logging: { level: 'info' },
      pools: [
        remotePool('fleet', 'vllm', ['gpu-a', 'gpu-b']),
        remotePool('chat', 'llamacpp', ['gpu-a']),
        remotePool('guarded', 'triton', ['gpu-b']),
      ],
    },
    'orchestrator',
  );
  url = await orchestrator.url;
  await startNode('gpu-a', [simPool('fleet', 'vllm', a), simPool('chat', 'llamacpp', a)]);
  // Triton has no API key: pool-managerd binds it to loopback and guards it on B's address.
  await startNode('gpu-b', [simPool('fleet', 'vllm', b), simPool('guarded', 'triton', b)]);
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map(stop));
  await lab?.close();
}, 60_000);

type Health = { ready: boolean; replicas: { replica_id: string; state: string; cause?: string }[] };
const readyReplicas = async (pool: string) =>
  ((await call(url, 'GET', `/v1/pools/${pool}/health`, { key: KEYS.ops })).json as Health).replicas
    .filter((r) => r.state === 'ready')
    .map((r) => r.replica_id)
    .sort();

describe.skipIf(unavailable !== undefined)(
  `separate hosts in network namespaces${unavailable === undefined ? '' : ` (skipped: ${unavailable})`}`,
  () => {
    it('ORCH-1101: the prod orchestrator starts on a host without GPUs when its pools live on GPU hosts', async () => {
      expect((await call(url, 'GET', '/v1/capabilities', { key: KEYS.ops })).status).toBe(200);
      // The same host with a pool of its own is refused: local pools still need GPUs.
      const local = await serve(
        {
          profile: 'prod',
          listen: { host: '127.0.0.1', port: 0 },
          auth: { keys: TEST_KEYS },
          data_dir: join(dir, 'orch-local'),
          engines: { nvidia_smi_path: join(dir, 'no-such-nvidia-smi') },
          pools: [{ ...remotePool('here', 'vllm', []), hosts: undefined, model: { id: 'here', path: dir } }],
        },
        'orchestrator-local',
      );
      await expect(local.url).rejects.toThrow(/ORCH-1101/);
    });

    it('both hosts register their replicas over their links, with their node credentials', async () => {
      await until(
        async () =>
          (await readyReplicas('fleet')).length === 2 &&
          (await readyReplicas('chat')).length === 1 &&
          (await readyReplicas('guarded')).length === 1,
        90_000,
      );
      expect(await readyReplicas('fleet')).toEqual(['gpu-a/fleet-r0', 'gpu-b/fleet-r0']);
      expect(await readyReplicas('chat')).toEqual(['gpu-a/chat-r0']);
      expect(await readyReplicas('guarded')).toEqual(['gpu-b/guarded-r0']);
    });

    it('places work on both hosts and streams a task from each, through every kind of engine access', async () => {
      // Each replica has one slot and a fleet task holds it for ~2 s: the second goes to the other host.
      const fleet = [0, 1].map(() => task('fleet', { engine: 'vllm', max_tokens: 200 }));
      const chat = task('chat', { engine: 'llamacpp', max_tokens: 8 });
      const guarded = task('guarded', { engine: 'triton', max_tokens: 8 });
      const accepted = await Promise.all(
        [...fleet, chat, guarded].map((t) => call(url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })),
      );
      expect(accepted.map((r) => r.status)).toEqual([202, 202, 202, 202]);
      const ends = await Promise.all(
        [...fleet, chat, guarded].map(async (t) => {
          const events = (await readStream(url, t.task_id, { key: KEYS.alice })).events;
          expect(events.filter((e) => e.event === 'token').length, t.task_id).toBeGreaterThan(0);
          return events.at(-1);
        }),
      );
      for (const e of ends) expect(e?.event).toBe('end');
      const replicas = ends.map((e) => e?.data['replica_id']);
      expect(replicas.slice(0, 2).sort()).toEqual(['gpu-a/fleet-r0', 'gpu-b/fleet-r0']);
      expect(replicas.slice(2)).toEqual(['gpu-a/chat-r0', 'gpu-b/guarded-r0']);
    });

    it("no engine port on either host answers the orchestrator's namespace without a credential", async () => {
      // What an open engine of each kind would serve (no health checks: vLLM and TGI keep those open).
      const probes = [
        { method: 'POST', path: '/completion', body: { prompt: 'x', n_predict: 1 } }, // llama.cpp
        { method: 'GET', path: '/props' }, // llama.cpp
        { method: 'GET', path: '/v1/models' }, // vLLM
        { method: 'POST', path: '/generate', body: { inputs: 'x', parameters: { max_new_tokens: 1 } } }, // TGI
        { method: 'GET', path: '/v2' }, // Triton
      ];
      const refusals: string[] = [];
      let loopbackOnly = 0;
      for (const host of hostOf.values()) {
        const sockets = await lab!.listening(host);
        for (const socket of sockets) {
          const port = socket.slice(socket.lastIndexOf(':') + 1);
          if (socket.startsWith('127.')) {
            // Bound to the host's loopback: another host cannot even connect.
            loopbackOnly++;
            await expect(fetch(`http://${host.address}:${port}/v2`)).rejects.toThrow();
            continue;
          }
          expect(socket, 'engines bind the host address, never every interface').toBe(
            `${host.address}:${port}`,
          );
          const statuses: number[] = [];
          for (const p of probes) {
            const res = await fetch(`http://${host.address}:${port}${p.path}`, {
              method: p.method,
              headers: { 'content-type': 'application/json' },
              ...('body' in p ? { body: JSON.stringify(p.body) } : {}),
            });
            const text = await res.text();
            statuses.push(res.status);
            if (res.status === 401) refusals.push(text);
          }
          expect(
            statuses.filter((s) => s >= 200 && s < 300),
            `${socket} answered without a key`,
          ).toEqual([]);
          expect(statuses, `${socket} refuses for want of a credential`).toContain(401);
        }
      }
      // vLLM on both hosts, llama.cpp on A, the guard (HTTP and metrics) on B; Triton itself on loopback.
      expect(refusals).toContain('{"error":"Unauthorized"}');
      expect(refusals).toContain(
        '{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}',
      );
      expect(refusals.some((r) => /credential pool-managerd issued/.test(r))).toBe(true);
      expect(loopbackOnly).toBeGreaterThanOrEqual(2);
    });
  },
);
