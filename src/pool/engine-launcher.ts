/**
 * How a pool's engine processes are started and reached: the command line of each engine (or of
 * the engine simulator speaking its dialect), its environment, and the adapter that talks to a
 * started process. The supervisor is the same for every engine; what differs per engine (command
 * line, ports, key variable, adapter) comes from its driver (`src/engines/<engine>/driver.ts`).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ResolvedPool } from '../config/resolved-config.js';
import type { EngineAdapter } from '../engines/adapter.js';
import type { EngineUrls } from '../engines/engine-driver.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import { replicaMask } from '../engines/replica-gpus.js';

// Each engine's command line is its driver's; these stay reachable from here, where they were.
export { llamaServerArgs } from '../engines/llamacpp/launch-args.js';
export { tgiArgs } from '../engines/tgi/launch-args.js';
export { tritonArgs } from '../engines/triton/launch-args.js';
export { vllmArgs } from '../engines/vllm/launch-args.js';
export { replicaMask };

export interface EngineCommand {
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export interface EngineLauncher {
  /** True when the replicas are engine simulators, not real engines. */
  readonly simulated: boolean;
  /** Ports one process needs (Triton: HTTP, metrics and gRPC). */
  readonly portCount: number;
  /** `pool` overrides the launcher's own configuration (capacity re-estimated after a GPU OOM). */
  command(replicaIndex: number, ports: readonly number[], pool?: ResolvedPool): EngineCommand;
  adapter(ports: readonly number[], pool?: ResolvedPool): EngineAdapter;
}

/**
 * `CUDA_VISIBLE_DEVICES` from the replica's device mask (CPU pools see no GPU at all; UUIDs pass
 * through, CUDA takes them), `CUDA_DEVICE_ORDER=PCI_BUS_ID` so that an index means the GPU
 * nvidia-smi gives that index (CUDA's own default order puts the fastest GPU first), and the
 * engine's API key variable: the pool's key, or removed, so that a key inherited from this
 * process's environment never turns on authentication the adapter does not know about.
 */
export function engineEnv(
  pool: ResolvedPool,
  base: NodeJS.ProcessEnv = process.env,
  replicaIndex = 0,
): NodeJS.ProcessEnv {
  const mask = replicaMask(pool, replicaIndex);
  const env: NodeJS.ProcessEnv = {
    ...base,
    CUDA_VISIBLE_DEVICES: mask === 'cpu' ? '' : mask.join(','),
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
  };
  // The key goes in the engine's own variable (its driver's), not on the command line, where any
  // local user could read it (`ps`).
  const keyVar = ENGINE_DRIVERS[pool.engine].apiKey?.env;
  if (keyVar !== undefined) {
    if (pool.launch.apiKey === undefined) delete env[keyVar];
    else env[keyVar] = pool.launch.apiKey;
  }
  return env;
}

const hostOf = (pool: ResolvedPool) =>
  pool.launch.host.includes(':') ? `[${pool.launch.host}]` : pool.launch.host;
const url = (pool: ResolvedPool, port: number | undefined) => `http://${hostOf(pool)}:${port ?? 0}`;

export function adapterFor(
  pool: ResolvedPool,
  ports: readonly number[],
  modelDigest: string | undefined,
): EngineAdapter {
  return adapterForUrls(pool, { base: url(pool, ports[0]), metrics: url(pool, ports[1]) }, modelDigest);
}

/** The adapter of an engine reachable at `urls` (a local process, or a remote host's engine). */
export function adapterForUrls(
  pool: ResolvedPool,
  urls: EngineUrls,
  modelDigest: string | undefined,
): EngineAdapter {
  return ENGINE_DRIVERS[pool.engine].createAdapter(pool, urls, modelDigest);
}

export interface NativeLauncherOptions {
  readonly pool: ResolvedPool;
  /** The engine binary (llama-server, vllm, text-generation-launcher, tritonserver). */
  readonly binary: string;
  readonly modelDigest: string | undefined;
}

export function nativeLauncher(o: NativeLauncherOptions): EngineLauncher {
  const { pool } = o;
  return {
    simulated: false,
    portCount: ENGINE_DRIVERS[pool.engine].portCount.native,
    command: (index, ports, p = pool) => ({
      binary: o.binary,
      args: ENGINE_DRIVERS[p.engine].nativeArgs(p, ports, index),
      env: engineEnv(p, process.env, index),
    }),
    adapter: (ports, p = pool) => adapterFor(p, ports, o.modelDigest),
  };
}

/** The simulator entry: compiled JS next to this module, or the TypeScript source under tsx. */
function simEntry(): { binary: string; prefix: string[] } {
  const js = fileURLToPath(new URL('../sim/sim-process.js', import.meta.url));
  if (existsSync(js)) return { binary: process.execPath, prefix: [js] };
  const ts = fileURLToPath(new URL('../sim/sim-process.ts', import.meta.url));
  return { binary: process.execPath, prefix: ['--import', 'tsx', ts] };
}

export function simArgs(pool: ResolvedPool, replicaIndex: number, ports: readonly number[]): string[] {
  const s = pool.launch.sim;
  const args = [
    '--dialect',
    pool.engine,
    '--host',
    pool.launch.host,
    '--port',
    String(ports[0] ?? 0),
    '--model',
    pool.model.id,
    '--engine-version',
    s.engineVersions[replicaIndex] ?? s.engineVersions[0] ?? 'sim',
    '--slots',
    String(pool.launch.parallel),
    '--ctx',
    String(pool.ctx),
    '--tokens-per-s',
    String(s.tokensPerSecond),
    '--prefill-tokens-per-s',
    String(s.prefillTokensPerSecond),
    '--batch-slowdown',
    String(s.batchSlowdown),
    '--kv-tokens',
    String(s.kvTokens),
    '--load-ms',
    String(s.loadMs),
  ];
  args.push(...ENGINE_DRIVERS[pool.engine].simArgs(pool, ports));
  // A simulated pool with a model file "loads" it: a missing file fails the start like a real engine.
  if (pool.model.path !== '') args.push('--model-file', pool.model.path);
  // The API key travels in the engine's own variable (engineEnv), as for the real engine.
  return [...args, ...pool.launch.extraArgs];
}

export function simLauncher(pool: ResolvedPool): EngineLauncher {
  const entry = simEntry();
  return {
    simulated: true,
    portCount: ENGINE_DRIVERS[pool.engine].portCount.sim,
    command: (index, ports, p = pool) => ({
      binary: entry.binary,
      args: [...entry.prefix, ...simArgs(p, index, ports)],
      env: engineEnv(p, process.env, index),
    }),
    adapter: (ports, p = pool) => adapterFor(p, ports, p.model.digest ?? `sim:${p.model.id}`),
  };
}
