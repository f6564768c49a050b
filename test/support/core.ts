/**
 * An orchestrator core with in-process engines for unit and property tests: one llama.cpp-shaped
 * pool `p` of model `m` over step-driven fake replicas, configurable like a real config file.
 */
import { randomUUID } from 'node:crypto';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawPool } from '../../src/config/schema.js';
import type { Principal, SubmitInput } from '../../src/domain/submit.js';
import type { Clock } from '../../src/domain/types.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { Orchestrator, type OrchestratorOptions } from '../../src/orchestrator/orchestrator.js';
import { createLogger } from '../../src/util/logger.js';
import { FakeSupervisor, StepAdapter } from './fake-pool.js';

export interface CoreOptions {
  readonly pool?: Partial<RawPool>;
  readonly top?: Record<string, unknown>;
  readonly replicas?: number;
  readonly interruptible?: boolean;
  /** The fake replicas declare an embedding model (and adapters with `embed` serve it). */
  readonly embeddings?: boolean;
  readonly clock?: Clock;
  /** One adapter per replica (default: one shared StepAdapter). */
  readonly adapters?: readonly StepAdapter[];
  readonly extra?: Partial<
    Omit<OrchestratorOptions, 'config' | 'supervisors' | 'metrics' | 'logger' | 'clock'>
  >;
}

const open: Orchestrator[] = [];

/** Closes every core made since the last call (call from `afterEach`). */
export async function closeCores(): Promise<void> {
  for (const o of open.splice(0)) await o.close(0);
}

export function core(o: CoreOptions = {}) {
  const { config } = validateConfig({
    profile: 'dev',
    sse: { metrics_interval_ms: 60_000 },
    ...o.top,
    pools: [
      {
        id: 'p',
        engine: 'llamacpp',
        model: { id: 'm', path: '/dev/null' },
        ctx: 512,
        devices: 'cpu',
        ...o.pool,
      },
    ],
  });
  const adapter = new StepAdapter();
  const sup = new FakeSupervisor(
    'p',
    o.adapters ? [...o.adapters] : Array.from({ length: o.replicas ?? 1 }, () => adapter),
    { interruptible: o.interruptible ?? false, embeddings: o.embeddings ?? false },
  );
  const metrics = new OrchMetrics({ processMetrics: false });
  const orch = new Orchestrator({
    config,
    supervisors: new Map([['p', sup]]),
    metrics,
    logger: createLogger({ level: 'silent' }),
    clock: o.clock ?? { now: () => Date.now() },
    ...o.extra,
  });
  open.push(orch);
  const pool = orch.pools[0];
  if (!pool) throw new Error('no pool');
  return { orch, adapter, sup, metrics, pool };
}

export const tenant = (id: string): Principal => ({ tenant: id, keyId: id, scopes: ['data'] });

export function input(extra: Partial<SubmitInput> = {}): SubmitInput {
  return {
    taskId: randomUUID(),
    sessionId: randomUUID(),
    workload: 'completion',
    modelRef: 'm',
    engine: 'llamacpp',
    ctx: 512,
    priority: 'interactive',
    seed: undefined,
    determinism: 'strict',
    samplerProfileVersion: 'v1',
    prompt: 'hi',
    inputs: undefined,
    maxTokens: 5,
    deadlineMs: 60_000,
    expectedTokens: undefined,
    kvHint: undefined,
    ...extra,
  };
}

/** Lets engine streams and their relays run. */
export const settle = async (rounds = 8): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};

/** Event types of a task's stream so far. */
export const eventTypes = (orch: Orchestrator, who: Principal, id: string): string[] =>
  orch
    .task(who, id)
    .log.since(0)
    .map((e) => e.event.type);

export interface FleetPool {
  readonly id: string;
  readonly replicas?: number;
  readonly engineVersion?: string;
  readonly pool?: Partial<RawPool>;
  /** One adapter per replica (default: a fresh StepAdapter each). */
  readonly adapters?: readonly StepAdapter[];
}

/**
 * A core over several pools of model `m` (llama.cpp-shaped), each with its own step-driven
 * adapter per replica: pools with equal engine versions form one replica set.
 */
export function fleet(pools: readonly FleetPool[], o: { top?: Record<string, unknown>; clock?: Clock } = {}) {
  const { config } = validateConfig({
    profile: 'dev',
    sse: { metrics_interval_ms: 60_000 },
    ...o.top,
    pools: pools.map((p) => ({
      id: p.id,
      engine: 'llamacpp',
      model: { id: 'm', path: '/dev/null' },
      ctx: 512,
      devices: 'cpu',
      ...p.pool,
    })),
  });
  const adapters = new Map<string, StepAdapter[]>();
  const sups = new Map<string, FakeSupervisor>();
  for (const p of pools) {
    const list = p.adapters
      ? [...p.adapters]
      : Array.from({ length: p.replicas ?? 1 }, () => new StepAdapter());
    adapters.set(p.id, list);
    sups.set(
      p.id,
      new FakeSupervisor(p.id, list, p.engineVersion === undefined ? {} : { engineVersion: p.engineVersion }),
    );
  }
  const metrics = new OrchMetrics({ processMetrics: false });
  const orch = new Orchestrator({
    config,
    supervisors: sups,
    metrics,
    logger: createLogger({ level: 'silent' }),
    clock: o.clock ?? { now: () => Date.now() },
  });
  open.push(orch);
  const pool = (id: string) => {
    const p = orch.pools.find((x) => x.id === id);
    if (!p) throw new Error(`no pool ${id}`);
    return p;
  };
  const adaptersOf = (id: string): StepAdapter[] => adapters.get(id) ?? [];
  return { orch, metrics, pool, sups, adaptersOf };
}
