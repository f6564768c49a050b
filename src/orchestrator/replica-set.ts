/**
 * Replica sets (SPEC §4, §17): the pools — local or on pool-managerd hosts — that serve the same
 * model the same way, so a task may run on any ready replica of any of them and its output is
 * the same. Membership is computed from what the pools are now (a reload or an engine upgrade
 * moves a pool to another set), never configured.
 */
import { createHash } from 'node:crypto';
import type { PoolRuntime } from './pool-runtime.js';

/** What must be identical for pools to share work (ORCH-3046: versions never mix). */
export interface ReplicaSetIdentity {
  readonly engine: string;
  readonly modelId: string;
  /** `sha256:…` when known (configured or reported by the replicas). */
  readonly modelDigest: string | undefined;
  readonly quant: string | undefined;
  readonly ctx: number;
  readonly engineVersion: string;
  readonly samplerProfileVersion: string;
}

/** The sampler profile every adapter normalizes to (docs/engines.md). */
export const SAMPLER_PROFILE_VERSION = 'v1';

export function identityOf(pool: PoolRuntime): ReplicaSetIdentity {
  return {
    engine: pool.config.engine,
    modelId: pool.config.model.id,
    modelDigest: pool.modelDigest(),
    quant: pool.config.model.quant,
    ctx: pool.config.ctx,
    engineVersion: pool.engineVersion(),
    samplerProfileVersion: SAMPLER_PROFILE_VERSION,
  };
}

function keyOf(i: ReplicaSetIdentity): string {
  // The model id clients address is part of the identity too: pools that serve one file under
  // two names are two sets (they may carry their own quotas, prices and queue policies).
  return JSON.stringify([
    i.engine,
    i.modelId,
    i.modelDigest ?? null,
    i.quant ?? null,
    i.ctx,
    i.engineVersion,
    i.samplerProfileVersion,
  ]);
}

/** Stable, readable and unique: `<engine>:<model id>:<ctx>:<hash of the whole identity>`. */
export function replicaSetId(pool: PoolRuntime): string {
  const i = identityOf(pool);
  const hash = createHash('sha256').update(keyOf(i)).digest('hex').slice(0, 10);
  return `${i.engine}:${i.modelId}:${i.ctx}:${hash}`;
}

export function sameReplicaSet(a: PoolRuntime, b: PoolRuntime): boolean {
  return a === b || keyOf(identityOf(a)) === keyOf(identityOf(b));
}

/** The other members of `pool`'s replica set, in configuration order. */
export function siblingsOf(pools: readonly PoolRuntime[], pool: PoolRuntime): PoolRuntime[] {
  return pools.filter((p) => p !== pool && sameReplicaSet(p, pool));
}

export interface ReplicaSet {
  readonly id: string;
  readonly identity: ReplicaSetIdentity;
  /** Member pools in configuration order. */
  readonly members: readonly PoolRuntime[];
}

/** Every replica set of the fleet, in the order of their first member's configuration. */
export function replicaSets(pools: readonly PoolRuntime[]): ReplicaSet[] {
  const byKey = new Map<string, { id: string; identity: ReplicaSetIdentity; members: PoolRuntime[] }>();
  for (const pool of pools) {
    const identity = identityOf(pool);
    const key = keyOf(identity);
    const set = byKey.get(key);
    if (set) set.members.push(pool);
    else byKey.set(key, { id: replicaSetId(pool), identity, members: [pool] });
  }
  return [...byKey.values()];
}

/**
 * Whether admission would take new work on this member now: a drained or reloading pool
 * refuses it even while its replicas are up.
 */
export function admitsWork(pool: PoolRuntime): boolean {
  return !pool.draining && !pool.reloading && pool.availability() === 'ready';
}
