/**
 * How a pool's engine processes are started and reached: the command line of each engine (or of
 * the engine simulator speaking its dialect), and the adapter that talks to a started process.
 * The supervisor is the same for every engine; only this part differs.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedPool } from '../config/resolved-config.js';
import type { EngineAdapter } from '../engines/adapter.js';
import { LlamaCppAdapter } from '../engines/llamacpp/adapter.js';
import { OFFLOAD_REPORT_ARGS } from '../engines/llamacpp/offload-report.js';
import { TgiAdapter } from '../engines/tgi/adapter.js';
import { TritonAdapter } from '../engines/triton/adapter.js';
import { VllmAdapter } from '../engines/vllm/adapter.js';

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
 * The environment variable each engine reads its API key from (the simulator reads the same in
 * its engine's dialect). The key goes in the environment, not on the command line, where any
 * local user could read it (`ps`). llama-server: `--api-key` "(env: LLAMA_API_KEY)" in its
 * `--help` (the pinned build, and upstream common/arg.cpp); vLLM: "the argument `--api-key` or
 * environment variable `VLLM_API_KEY`" (docs.vllm.ai, OpenAI-Compatible Server); TGI:
 * `--api-key` "[env: API_KEY=]" (text-generation-launcher arguments, since v2.3.0,
 * huggingface/text-generation-inference#2315). Triton has no API key (none in `tritonserver
 * --help`; its BETA `--http-restricted-api` takes the secret on the command line).
 */
export const ENGINE_KEY_ENV = {
  llamacpp: 'LLAMA_API_KEY',
  vllm: 'VLLM_API_KEY',
  tgi: 'API_KEY',
  triton: undefined,
} as const satisfies Record<ResolvedPool['engine'], string | undefined>;

/** The device mask of one replica (`replica_devices`, else the pool's `devices`). */
export function replicaMask(pool: ResolvedPool, replicaIndex: number): ResolvedPool['devices'] {
  return pool.replicaDevices[replicaIndex] ?? pool.devices;
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
  const keyVar = ENGINE_KEY_ENV[pool.engine];
  if (keyVar !== undefined) {
    if (pool.launch.apiKey === undefined) delete env[keyVar];
    else env[keyVar] = pool.launch.apiKey;
  }
  return env;
}

const hostOf = (pool: ResolvedPool) =>
  pool.launch.host.includes(':') ? `[${pool.launch.host}]` : pool.launch.host;
const url = (pool: ResolvedPool, port: number | undefined) => `http://${hostOf(pool)}:${port ?? 0}`;
/** GPUs of one replica: its tensor-parallel size. */
const gpuCount = (pool: ResolvedPool, replicaIndex: number) => {
  const mask = replicaMask(pool, replicaIndex);
  return mask === 'cpu' ? 1 : mask.length;
};

export function llamaServerArgs(pool: ResolvedPool, port: number): string[] {
  const l = pool.launch;
  const args = [
    '-m',
    pool.model.path,
    '--host',
    l.host,
    '--port',
    String(port),
    // `-c` is the whole KV cache; each of the `parallel` slots gets ctx tokens.
    '-c',
    String(pool.ctx * l.parallel),
    '-np',
    String(l.parallel),
    '-t',
    String(l.threads),
    l.contBatching ? '--cont-batching' : '--no-cont-batching',
    '-ngl',
    String(l.gpuLayers),
    '--metrics',
    // Slot actions (erasing a deleted session's KV, SPEC §17 §2.4) are refused without a save
    // path; nothing is ever saved there.
    '--slot-save-path',
    slotSavePath(),
  ];
  if (pool.tensorSplit !== undefined) args.push('--tensor-split', pool.tensorSplit.join(','));
  // GPU pools: llama.cpp prints where the layers went only at verbosity 4; the offload check reads it.
  if (pool.devices !== 'cpu' && l.gpuLayers > 0) args.push(...OFFLOAD_REPORT_ARGS);
  return [...args, ...l.extraArgs];
}

/** The directory llama-server requires for slot actions; it must exist before the server starts. */
function slotSavePath(): string {
  const dir = join(tmpdir(), 'llama-orch-slots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** `vllm serve` (docs.vllm.ai "vllm serve" CLI arguments). */
export function vllmArgs(pool: ResolvedPool, port: number, replicaIndex = 0): string[] {
  const l = pool.launch;
  const args = ['serve', pool.model.path, '--host', l.host, '--port', String(port)];
  args.push('--served-model-name', pool.model.id, '--max-model-len', String(pool.ctx));
  args.push(
    '--max-num-seqs',
    String(l.parallel),
    '--tensor-parallel-size',
    String(gpuCount(pool, replicaIndex)),
    '--seed',
    '0',
  );
  // Explicit, so the capacity planner reserves what the engine takes whatever vLLM's default.
  if (l.gpuMemoryUtilization !== undefined)
    args.push('--gpu-memory-utilization', String(l.gpuMemoryUtilization));
  // The API key travels as VLLM_API_KEY (engineEnv), not on the command line.
  return [...args, ...l.extraArgs];
}

/** `text-generation-launcher` (TGI launcher arguments). */
export function tgiArgs(pool: ResolvedPool, port: number, replicaIndex = 0): string[] {
  const l = pool.launch;
  return [
    '--model-id',
    pool.model.path,
    '--hostname',
    l.host,
    '--port',
    String(port),
    '--max-total-tokens',
    String(pool.ctx),
    '--max-input-tokens',
    String(pool.ctx - 1),
    '--max-concurrent-requests',
    String(l.parallel),
    '--num-shard',
    String(gpuCount(pool, replicaIndex)),
    ...l.extraArgs,
  ];
}

/** `tritonserver` over a TensorRT-LLM model repository; gRPC gets its own port so replicas coexist. */
export function tritonArgs(pool: ResolvedPool, ports: readonly number[]): string[] {
  const [http, metrics, grpc] = ports;
  const l = pool.launch;
  return [
    `--model-repository=${pool.model.path}`,
    `--http-address=${l.host}`,
    `--http-port=${http ?? 0}`,
    `--metrics-address=${l.host}`,
    `--metrics-port=${metrics ?? 0}`,
    `--grpc-address=${l.host}`,
    `--grpc-port=${grpc ?? 0}`,
    ...l.extraArgs,
  ];
}

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
  urls: { base: string; metrics?: string | undefined },
  modelDigest: string | undefined,
): EngineAdapter {
  const base = urls.base;
  const connections = pool.launch.parallel + 4;
  const apiKey = pool.launch.apiKey;
  switch (pool.engine) {
    case 'llamacpp':
      return new LlamaCppAdapter({ baseUrl: base, modelDigest, connections, apiKey });
    case 'vllm':
      return new VllmAdapter({
        baseUrl: base,
        model: pool.model.id,
        apiKey,
        slots: pool.launch.parallel,
        modelDigest,
        connections,
      });
    case 'tgi':
      return new TgiAdapter({ baseUrl: base, modelDigest, connections, apiKey });
    case 'triton':
      return new TritonAdapter({
        baseUrl: base,
        metricsUrl: urls.metrics ?? base,
        ctx: pool.ctx,
        modelDigest,
        connections,
        // Triton itself takes no key: this is the key of pool-managerd's guard in front of it.
        apiKey,
      });
  }
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
    portCount: pool.engine === 'triton' ? 3 : 1,
    command: (index, ports, p = pool) => {
      const port = ports[0] ?? 0;
      const args =
        p.engine === 'llamacpp'
          ? llamaServerArgs(p, port)
          : p.engine === 'vllm'
            ? vllmArgs(p, port, index)
            : p.engine === 'tgi'
              ? tgiArgs(p, port, index)
              : tritonArgs(p, ports);
      return { binary: o.binary, args, env: engineEnv(p, process.env, index) };
    },
    adapter: (ports, p = pool) => adapterFor(p, ports, o.modelDigest),
  };
}

/** Default binary of each engine when the config names none. */
export const NATIVE_BINARIES = {
  vllm: 'vllm',
  tgi: 'text-generation-launcher',
  triton: 'tritonserver',
} as const;

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
  if (pool.engine === 'triton') args.push('--metrics-port', String(ports[1] ?? 0));
  // A simulated pool with a model file "loads" it: a missing file fails the start like a real engine.
  if (pool.model.path !== '') args.push('--model-file', pool.model.path);
  // The API key travels in the engine's own variable (engineEnv), as for the real engine.
  return [...args, ...pool.launch.extraArgs];
}

export function simLauncher(pool: ResolvedPool): EngineLauncher {
  const entry = simEntry();
  return {
    simulated: true,
    portCount: pool.engine === 'triton' ? 2 : 1,
    command: (index, ports, p = pool) => ({
      binary: entry.binary,
      args: [...entry.prefix, ...simArgs(p, index, ports)],
      env: engineEnv(p, process.env, index),
    }),
    adapter: (ports, p = pool) => adapterFor(p, ports, p.model.digest ?? `sim:${p.model.id}`),
  };
}
