/** The embedded dev default (SPEC §1 dev profile): CPU llama.cpp replicas of the generated model. */
import { resolve } from 'node:path';
import { validateConfig, type LoadConfigResult } from '../config/load-config.js';
import type { RawConfig } from '../config/schema.js';
import { FULL_POLICIES, type Engine, type FullPolicy } from '../domain/types.js';
import { sha256Hex } from '../http/auth.js';

export interface DevOptions {
  port: number;
  host: string;
  replicas: number;
  apiKey: string | undefined;
  queueCapacity: number;
  fullPolicy: FullPolicy;
  /** A real GGUF instead of the generated tiny model. */
  modelPath: string | undefined;
  dataDir: string;
  ctx: number;
  /** `sim` runs simulated replicas instead of real llama-server processes. */
  engine: 'llamacpp' | 'sim';
  /** Dialect of the simulated replicas. */
  simDialect: Engine;
  simTokensPerSecond: number;
  simSlots: number;
}

export const DEV_DEFAULTS: DevOptions = {
  port: 8080,
  host: '127.0.0.1',
  replicas: 2,
  apiKey: undefined,
  queueCapacity: 256,
  fullPolicy: 'reject',
  modelPath: undefined,
  dataDir: '.llorch',
  ctx: 512,
  engine: 'llamacpp',
  simDialect: 'llamacpp',
  simTokensPerSecond: 200,
  simSlots: 4,
};

export function isFullPolicy(v: string): v is FullPolicy {
  return (FULL_POLICIES as readonly string[]).includes(v);
}

/** Path of the generated model inside the data directory. */
export function tinyModelPath(dataDir: string): string {
  return resolve(dataDir, 'models', 'tiny.gguf');
}

/** The dev configuration, validated like any YAML file would be. */
export function devConfig(o: DevOptions): LoadConfigResult {
  const raw: RawConfig = {
    profile: 'dev',
    listen: { host: o.host, port: o.port },
    data_dir: o.dataDir,
    auth: {
      keys:
        o.apiKey === undefined
          ? []
          : [{ id: 'dev', tenant: 'dev', sha256: sha256Hex(o.apiKey), scopes: ['data', 'control'] }],
    },
    pools: [o.engine === 'sim' ? simPool(o) : llamaPool(o)],
    // The generated model is signed and catalogued: strict, as in production. A model of the
    // user's own (`--model`) is not catalogued, so it loads under permissive, with a warning.
    catalog: {
      trust_policy: o.modelPath === undefined ? 'strict' : 'permissive',
      trust_roots: [devKeyPaths(o.dataDir).pub],
    },
  };
  return validateConfig(raw);
}

type RawPool = RawConfig['pools'][number];

function simPool(o: DevOptions): RawPool {
  return {
    id: `sim-${o.simDialect}`,
    engine: o.simDialect,
    model: { id: 'tiny' },
    ctx: o.ctx,
    replicas: o.replicas,
    devices: 'cpu',
    launch: { worker: 'sim', parallel: o.simSlots, sim: { tokens_per_s: o.simTokensPerSecond } },
    queue: { capacity: o.queueCapacity, full_policy: o.fullPolicy },
  };
}

function llamaPool(o: DevOptions): RawPool {
  return {
    id: 'tiny',
    engine: 'llamacpp',
    model: { id: 'tiny', path: o.modelPath ?? tinyModelPath(o.dataDir) },
    ctx: o.ctx,
    replicas: o.replicas,
    devices: 'cpu',
    // Determinism profile of llama.cpp (SPEC §7): one slot, no continuous batching.
    launch: { threads: 1, parallel: 1, cont_batching: false },
    queue: { capacity: o.queueCapacity, full_policy: o.fullPolicy },
  };
}

/** Where the dev profile keeps its locally generated signing key. */
export function devKeyPaths(dataDir: string): { pub: string; key: string } {
  return { pub: resolve(dataDir, 'keys', 'dev.pub'), key: resolve(dataDir, 'keys', 'dev.key') };
}
