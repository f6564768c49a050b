/**
 * Everything llama-orch knows about one engine, behind one interface: its name, how it is
 * launched (binary, command line, ports, API-key variable), the adapter that talks to it, how
 * its own metrics are read, which engine-specific pool fields it honours, and how its binary and
 * model digest are provisioned. Each engine folder owns its driver (`src/engines/<engine>/driver.ts`);
 * `registry.ts` holds one per engine of `ENGINES`, so a new engine without a driver does not
 * compile. What a running replica can do (embeddings, continuous batching, interruptible decode)
 * is detected by its adapter (`EngineAdapter.properties().features`), not declared here.
 */
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import type { RawPool } from '../config/schema.js';
import type { Engine } from '../domain/types.js';
import type { Logger } from '../util/logger.js';
import type { EngineAdapter } from './adapter.js';

/** Where a started engine answers: its HTTP base URL and, where it has one of its own, its metrics URL. */
export interface EngineUrls {
  readonly base: string;
  readonly metrics?: string | undefined;
}

/** An engine's own API key: the variable it reads, and a request it refuses (401) without the key. */
export interface EngineApiKey {
  /** The environment variable the engine reads its key from (never the command line, where `ps` shows it). */
  readonly env: string;
  /** A harmless request the engine guards, to check that a running engine enforces its key. */
  readonly probe: { readonly method: 'GET' | 'POST'; readonly path: string; readonly body?: string };
}

/**
 * Pool fields that only some engines honour. Every driver states, for each, the flag that
 * honours it or why it cannot, so a field an engine would silently ignore is a config error
 * naming the field (`validate-engine-fields.ts`).
 */
export type EngineField = 'tensor_split' | 'launch.gpu_memory_utilization' | 'launch.embeddings';

/** How an engine treats an engine-specific field: the flag that honours it, or why it cannot. */
export type FieldSupport = { readonly honoured: string } | { readonly refused: string };

/** The engine-specific parts of a pool's resolved `launch` section. */
export interface EngineLaunchFields {
  /** vLLM's `--gpu-memory-utilization`; undefined for engines that take no memory share. */
  readonly gpuMemoryUtilization: number | undefined;
}

/** The engine's metric families and the mapping of its KV gauge to `kv_cache_usage_ratio`. */
export interface EngineMetricsMapping {
  /** The engine's own metric names (`contracts/metrics.json` `engine_passthrough.families`). */
  readonly family: RegExp;
  /** The engine's KV-cache usage (0..1) in one scrape of its metrics, when it reports one. */
  kvUsage(scrape: string): number | undefined;
}

/**
 * A judgement of the engine's own startup report (llama.cpp: the layers it offloaded to the
 * GPU): `lines` picks the report out of the output; a cause refuses the replica without retrying.
 */
export interface StartupReportCheck {
  readonly lines: RegExp;
  verify(report: readonly string[], replicaId: string): string | undefined;
}

/** What provisioning an engine for a pool has at hand. */
export interface ProvisionContext {
  /** The pool as it will be launched (a catalog model's path and digest already applied). */
  readonly pool: ResolvedPool;
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  /** Progress lines of a long step (a llama-server build). */
  readonly onProgress: (line: string) => void;
  /** GPUs of this host (nvidia-smi), 0 when unknown. */
  readonly gpuCount: () => number;
  /** Counts a replica refused by the startup check (`engine_failures_total{reason}`). */
  readonly onRefused: (reason: string) => void;
}

/** A provisioned engine: the binary to start and the check of its startup report, if any. */
export interface ProvisionedEngine {
  readonly binary: string;
  readonly verifyStartup?: StartupReportCheck | undefined;
}

/** What pinning a pool's model digest has at hand. */
export interface ModelDigestContext {
  readonly pool: ResolvedPool;
  /** True when the model is a catalog entry, whose digest the catalog verifies before each load. */
  readonly fromCatalog: boolean;
}

/** One engine, end to end. `E` narrows `engine` so the registry can be checked key by key. */
export interface EngineDriver<E extends Engine = Engine> {
  readonly engine: E;
  /** The engine's name in messages and logs ("llama.cpp", "vLLM"). */
  readonly displayName: string;
  /** The engine binary when the config names none (`launch.binary_path`). */
  readonly nativeBinary: string;
  /** Ports one process needs: the engine, and the simulator speaking its dialect. */
  readonly portCount: { readonly native: number; readonly sim: number };
  /** The engine's API key; undefined for engines without one (Triton). */
  readonly apiKey: EngineApiKey | undefined;
  /** For each engine-specific pool field, whether and how this engine honours it. */
  readonly fields: Readonly<Record<EngineField, FieldSupport>>;
  /** Engine-specific checks of a pool's fields, each problem prefixed with `at` and the field's path. */
  validatePool(p: RawPool, at: string): readonly string[];
  /** The engine-specific launch fields of a validated pool, defaults applied. */
  resolveLaunch(p: RawPool): EngineLaunchFields;
  /** The engine's command line for one replica (`ports` has `portCount.native` entries). */
  nativeArgs(pool: ResolvedPool, ports: readonly number[], replicaIndex: number): string[];
  /** Arguments the simulator needs beyond the common ones to speak this dialect (extra ports). */
  simArgs(pool: ResolvedPool, ports: readonly number[]): string[];
  /** The adapter of an engine of this pool reachable at `urls`. */
  createAdapter(pool: ResolvedPool, urls: EngineUrls, modelDigest: string | undefined): EngineAdapter;
  readonly metrics: EngineMetricsMapping;
  /** Finds (or builds) the engine binary of a native pool. */
  provision(ctx: ProvisionContext): Promise<ProvisionedEngine>;
  /** The model digest the pool's replicas report; a ConfigError when the model contradicts the config. */
  modelDigest(ctx: ModelDigestContext): Promise<string | undefined>;
}

/** Engines whose models are directories (vLLM, TGI, Triton): the configured binary, the configured digest. */
export const configuredBinary = (nativeBinary: string) => async (ctx: ProvisionContext) => ({
  binary: ctx.pool.launch.binaryPath ?? nativeBinary,
});

/** The digest a directory model has: the configured one (or the catalog entry's). */
export const configuredDigest = async (ctx: ModelDigestContext): Promise<string | undefined> =>
  ctx.pool.model.digest;

/** HTTP connections an adapter keeps to its engine: one per slot, and a few for probes, properties and scrapes. */
export const adapterConnections = (pool: ResolvedPool): number => pool.launch.parallel + 4;

/** The first sample of `pattern` (whose group 1 is the value) in a scrape, as a number. */
export function gaugeValue(pattern: RegExp, scrape: string): number | undefined {
  const v = Number(pattern.exec(scrape)?.[1]);
  return Number.isFinite(v) ? v : undefined;
}
