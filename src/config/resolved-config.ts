import type { PlacementPolicyName } from '../scheduler/policies/placement-policy.js';
import type { Engine, FullPolicy, Priority, Profile, Scope } from '../domain/types.js';
import type { LLAMA_POOLINGS } from './schema.js';
import type { ResolvedToolsConfig } from '../tools/tools-config.js';
import type { ResolvedPlugin } from '../plugins/plugin-config.js';

/**
 * The configuration every other module reads: defaults applied, units in names.
 * Produced only by `resolveConfig()`; nothing else reads raw YAML.
 */
export interface ResolvedConfig {
  readonly profile: Profile;
  readonly configMode: 'strict' | 'compat';
  readonly listen: { readonly host: string; readonly port: number };
  readonly limits: {
    readonly bodyLimitBytes: number;
    readonly maxHeaderBytes: number;
    /** Keep-alive / idle socket timeout. */
    readonly idleTimeoutMs: number;
    /** Time allowed to receive a whole request (headers + body). */
    readonly requestTimeoutMs: number;
  };
  readonly auth: { readonly keys: readonly ResolvedApiKey[] };
  readonly fairness: {
    readonly weights: Readonly<Record<Priority, number>>;
    readonly tenants: ReadonlyMap<string, ResolvedTenant>;
    readonly shareWindowTokens: number;
  };
  readonly scheduling: {
    readonly mode: 'wfq' | 'fifo';
    readonly deadlineSlackTokens: number;
    readonly preemption: 'soft' | 'hard' | 'off';
    /** Replica choice at dispatch (SPEC §4 late binding). */
    readonly placement: PlacementPolicyName;
  };
  readonly sse: {
    /** Period of `metrics` frames on a running task's stream. */
    readonly metricsIntervalMs: number;
    /** How long a finished task's events stay readable (late join / resume). */
    readonly retentionMs: number;
    /** Upper bound of events kept per task. */
    readonly maxEventsPerTask: number;
    readonly cancelOnDisconnect: boolean;
  };
  /** Defaults of the OpenAI-compatible surface for requests without `X-LLorch-*` headers. */
  readonly openai: {
    readonly defaultPriority: 'interactive' | 'batch';
    readonly deadlineMs: { readonly interactive: number; readonly batch: number };
  };
  readonly shutdown: {
    /** In-flight tasks may run this long after SIGTERM/SIGINT; the daemon exits a bounded time later. */
    readonly drainMs: number;
    /** Queued OrchQueue tasks stay journaled for the next start instead of ending. */
    readonly keepQueued: boolean;
  };
  readonly logging: {
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    /** Secret patterns scrubbed from logs and error bodies. */
    readonly redactPatterns: readonly string[];
  };
  readonly metrics: {
    /** `GET /metrics` requires a key with the `metrics` scope. */
    readonly requireKey: boolean;
    /** Period of the background scrape of engine metrics that `/metrics` serves. */
    readonly engineRefreshMs: number;
  };
  readonly engines: {
    /** Explicit llama-server binary; when absent: PATH, then the build cache. */
    readonly llamaServerPath: string | undefined;
    /** The llama-server build made from the pinned source (`auto`: detected, or LLORCH_LLAMA_BUILD). */
    readonly llamaBuild: 'auto' | 'cpu' | 'cuda';
    readonly cacheDir: string;
    readonly nvidiaSmiPath: string;
    readonly telemetryIntervalMs: number;
  };
  readonly dataDir: string;
  /** OTLP trace export; undefined: tracing off. */
  readonly tracing:
    | {
        readonly endpoint: string;
        readonly serviceName: string;
        readonly sampleRatio: number;
        readonly headers: Readonly<Record<string, string>>;
      }
    | undefined;
  /** Test-only hooks (dev profile only). */
  readonly testing: { readonly providerStates: boolean };
  /** The mediated tool proxy (SPEC §10). */
  readonly tools: ResolvedToolsConfig;
  /** Policy plugins (SPEC §10), in call order. */
  readonly plugins: readonly ResolvedPlugin[];
  readonly storage: {
    readonly kind: 'sqlite' | 'postgres';
    readonly sqlitePath: string;
    readonly postgresUrlEnv: string;
    readonly maxArtifactBytes: number;
    /** Used task ids remembered (memory and journal). */
    readonly rememberedTaskIds: number;
  };
  readonly catalog: {
    readonly trustPolicy: 'strict' | 'permissive';
    /** Paths of minisign public key files. */
    readonly trustRoots: readonly string[];
    readonly allowedSources: readonly ('path' | 'file' | 'https' | 'hf')[];
    readonly hfEndpoint: string;
    readonly overrideTenants: readonly string[];
    /** Downloaded models live under `<data_dir>/models/cache`. */
    readonly cacheDir: string;
    readonly cacheQuotaBytes: number | undefined;
  };
  readonly pools: readonly ResolvedPool[];
  /** Node credentials accepted by this orchestrator (sha256 by node id). */
  readonly nodes: ReadonlyMap<string, string>;
  readonly nodeTimeoutMs: number;
  /** Set when this process runs as pool-managerd. */
  readonly node: ResolvedNode | undefined;
}

export interface ResolvedNode {
  readonly id: string;
  readonly orchestratorUrl: string;
  readonly credentialEnv: string;
  /** File holding the node credential; when set it is used instead of `credentialEnv`. */
  readonly credentialFile: string | undefined;
  readonly advertiseHost: string | undefined;
  readonly heartbeatMs: number;
}

export interface ResolvedTenant {
  readonly weight: number;
  readonly maxConcurrent: number | undefined;
  readonly rps: number | undefined;
  readonly burst: number;
}

export interface ResolvedApiKey {
  /** A name for the key, safe to log. */
  readonly id: string;
  readonly tenant: string;
  /** Lower-case hex sha256 of the key; keys are never stored in clear. */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
  /** Pools a control key may drain and reload; undefined: every pool. */
  readonly pools: readonly string[] | undefined;
}

/** A GPU as nvidia-smi names it: its index (PCI bus order) or its UUID (`GPU-…`). */
export type GpuDevice = number | string;

export interface ResolvedSim {
  readonly tokensPerSecond: number;
  readonly prefillTokensPerSecond: number;
  readonly batchSlowdown: number;
  readonly kvTokens: number;
  readonly loadMs: number;
  /** Simulated replicas reserve GPU memory like the engine they stand in for (rehearsal). */
  readonly planGpu: boolean;
  /** One engine version per replica. */
  readonly engineVersions: readonly string[];
  /** Triton: the TensorRT-LLM model repository the simulator serves (`launch.sim.triton_ensemble`). */
  readonly tritonEnsemble: 'legacy' | 'current';
}

/** The models of a Triton pool's repository (`launch.triton`), defaults applied. */
export interface ResolvedTritonModels {
  readonly ensemble: string;
  readonly preprocessing: string;
  readonly tensorrtLlm: string;
}

export interface ResolvedPool {
  readonly id: string;
  readonly engine: Engine;
  readonly model: {
    /** The `model_ref` clients use to reach this pool (catalog id). */
    readonly id: string;
    /** Artifact path; empty for simulated pools, which need none. */
    readonly path: string;
    /** `sha256:<hex>` when known (configured or computed at load). */
    readonly digest: string | undefined;
    readonly quant: string | undefined;
  };
  /** Context length of one slot. */
  readonly ctx: number;
  readonly replicas: number;
  /** All GPUs of the pool, by index or UUID (→ CUDA_VISIBLE_DEVICES), or 'cpu' (dev profile only). */
  readonly devices: readonly GpuDevice[] | 'cpu';
  /** The device mask of each replica (one entry per replica); every entry is `devices` without `replica_devices`. */
  readonly replicaDevices: readonly (readonly GpuDevice[] | 'cpu')[];
  readonly tensorSplit: readonly number[] | undefined;
  readonly launch: {
    /** `native` runs the engine; `sim` runs the engine simulator in the engine's dialect. */
    readonly worker: 'native' | 'sim';
    readonly sim: ResolvedSim;
    /** Triton pools: the models the adapter talks to; undefined for other engines. */
    readonly triton: ResolvedTritonModels | undefined;
    /** The engine's API key (configured inline, from a file or the environment); pool-managerd generates one when absent. */
    readonly apiKey: string | undefined;
    readonly healthIntervalMs: number;
    readonly healthTimeoutMs: number;
    readonly restart: {
      readonly baseMs: number;
      readonly maxMs: number;
      readonly maxFailures: number;
      readonly windowMs: number;
      readonly cooldownMs: number;
    };
    readonly binaryPath: string | undefined;
    readonly host: string;
    readonly threads: number;
    /** Slots per engine process (`--parallel`). */
    readonly parallel: number;
    readonly contBatching: boolean;
    readonly gpuLayers: number;
    readonly extraArgs: readonly string[];
    /** llama.cpp `--embeddings` (false for other engines). */
    readonly embeddings: boolean;
    /** llama.cpp `--pooling` (`embeddings: {pooling}`); undefined: the model's own. */
    readonly pooling: (typeof LLAMA_POOLINGS)[number] | undefined;
    readonly startupTimeoutMs: number;
    /** vLLM `--gpu-memory-utilization` (share of each GPU's total memory); undefined for other engines. */
    readonly gpuMemoryUtilization: number | undefined;
  };
  readonly queue: {
    /** Total queued tasks across priorities. */
    readonly capacity: number;
    readonly fullPolicy: FullPolicy;
    /** Per-priority caps, each ≤ capacity. */
    readonly priorityCapacity: Readonly<Record<Priority, number>>;
  };
  readonly timeouts: { readonly wallMs: number; readonly idleMs: number };
  readonly session: { readonly ttlMs: number; readonly maxTurns: number };
  readonly prices: { readonly inputPer1kTokens: number; readonly outputPer1kTokens: number };
  readonly budgets: {
    readonly sessionTokens: number | undefined;
    readonly sessionWallMs: number | undefined;
    readonly sessionCost: number | undefined;
  };
  /** The SLO breaker (ORCH-3040): sheds batch admissions while the interactive SLO is violated. */
  readonly sloBreaker: {
    readonly enabled: boolean;
    /** Interactive tasks finished this recently are judged; shorter than `openAfterMs`. */
    readonly windowMs: number;
    readonly openAfterMs: number;
    readonly closeAfterMs: number;
    readonly minSamples: number;
  };
  /** Nodes that run this pool (remote); empty: engines run in this process's host. */
  readonly hosts: readonly string[];
  /** Per-replica topology cost; lower wins ties between equally loaded replicas. */
  readonly topologyCost: readonly number[];
}
