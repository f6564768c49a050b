/** Control plane (SPEC §6): pool health and operations, replica sets, capabilities. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OrchError } from '../errors/orch-error.js';
import { poolGpuTelemetry, replicaGpuTelemetry } from '../gpu/pool-telemetry.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { PoolRuntime } from '../orchestrator/pool-runtime.js';
import { admitsWork, replicaSets, type ReplicaSet } from '../orchestrator/replica-set.js';
import { SloWindow } from '../scheduler/slo-window.js';
import type { Authenticator } from './auth.js';
import { API_VERSION } from './generated/api-version.js';

export interface ControlRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  /** Validates a body against a control-plane schema; throws INVALID_PARAMS naming the field. */
  readonly validate: (schema: string, body: unknown) => unknown;
}

function trtllm(pool: PoolRuntime): { trtllm_version?: string } {
  const v = pool.readyReplicas().find((r) => r.props?.trtllmVersion !== undefined)?.props?.trtllmVersion;
  return v === undefined ? {} : { trtllm_version: v };
}

/** GPU telemetry from the host that runs the pool's engines (SPEC §5), never stale values as current. */
function telemetry(pool: PoolRuntime) {
  const t = poolGpuTelemetry(pool.config, pool.supervisor.replicas(), pool.supervisor.gpuTelemetry?.() ?? []);
  return t === undefined ? {} : { telemetry: t };
}

/** One replica set as `/v1/replicasets` shows it: identity, members, and capacity over all members. */
function replicaSetBody(set: ReplicaSet) {
  const { members, identity } = set;
  const first = members[0]!;
  const slotsTotal = sum(members, (p) => p.readySlots());
  const slotsFree = sum(members, (p) => p.freeSlots());
  return {
    id: set.id,
    engine: identity.engine,
    model_id: identity.modelId,
    model_digest: identity.modelDigest ?? null,
    engine_version: identity.engineVersion,
    sampler_profile_version: identity.samplerProfileVersion,
    ...trtllm(first),
    simulated: members.every((p) => p.simulated),
    ctx: identity.ctx,
    pools: members.map((p) => p.id),
    members: members.map((p) => ({
      pool_id: p.id,
      ready: admitsWork(p),
      draining: p.draining,
      replicas_ready: p.readyReplicas().length,
      replica_ids: p.supervisor.replicas().map((r) => r.id),
      hosts: p.config.hosts,
      queued: p.queue.size,
      slo: p.slo.snapshot(),
      slo_breaker: sloBreakerBody(p),
    })),
    replicas_ready: sum(members, (p) => p.readyReplicas().length),
    replicas_total: sum(members, (p) => p.supervisor.replicas().length),
    slots_total: slotsTotal,
    slots_free: slotsFree,
    load: slotsTotal === 0 ? 1 : (slotsTotal - slotsFree) / slotsTotal,
    slo: members.length === 1 ? first.slo.snapshot() : SloWindow.merged(members.map((p) => p.slo)),
  };
}

const sum = (pools: readonly PoolRuntime[], f: (p: PoolRuntime) => number): number =>
  pools.reduce((n, p) => n + f(p), 0);

/** The pool's SLO breaker (ORCH-3040) as health and replica sets show it. */
function sloBreakerBody(pool: PoolRuntime) {
  const b = pool.sloBreaker.view();
  return { enabled: b.enabled, state: b.state, since_ms: b.sinceMs, cause: b.cause };
}

function poolHealth(pool: PoolRuntime) {
  const replicas = pool.supervisor.replicas();
  const lastError = replicas
    .map((r) => (r.state.kind === 'unready' ? r.state.cause : undefined))
    .find((c) => c !== undefined);
  return {
    pool_id: pool.id,
    live: replicas.some((r) => r.state.kind !== 'stopped' && r.state.kind !== 'unready'),
    // Ready means admission would take new work now (a drained or reloading pool refuses it).
    ready: admitsWork(pool),
    draining: pool.draining,
    reloading: pool.reloading,
    metrics: {
      queue_depth: pool.queue.size,
      replicas_ready: pool.readyReplicas().length,
      slots_total: pool.readySlots(),
      slots_free: pool.freeSlots(),
    },
    last_error: lastError ?? null,
    slo_breaker: sloBreakerBody(pool),
    engine_version: pool.engineVersion(),
    ...trtllm(pool),
    ...(pool.modelDigest() === undefined ? {} : { model_digest: pool.modelDigest() }),
    simulated: pool.simulated,
    ...telemetry(pool),
    ...(pool.lifecycle === undefined
      ? {}
      : {
          lifecycle: {
            operation: pool.lifecycle.operation,
            state: pool.lifecycle.state,
            ...(pool.lifecycle.modelRef === undefined ? {} : { model_ref: pool.lifecycle.modelRef }),
            ...(pool.lifecycle.previousModelRef === undefined
              ? {}
              : { previous_model_ref: pool.lifecycle.previousModelRef }),
            ...(pool.lifecycle.cause === undefined ? {} : { cause: pool.lifecycle.cause }),
          },
        }),
    replicas: replicas.map((r) => ({
      replica_id: r.id,
      state: r.state.kind,
      ...(r.state.kind === 'unready' ? { cause: r.state.cause } : {}),
      ...replicaGpuTelemetry(r, pool.supervisor.gpuTelemetry?.() ?? []),
    })),
  };
}

export function registerControlRoutes(app: FastifyInstance, o: ControlRoutesOptions): void {
  const control = (req: FastifyRequest) => o.auth.authenticate(req.headers.authorization, 'control');
  const poolOf = (id: string): PoolRuntime => {
    const pool = o.orchestrator.pools.find((p) => p.id === id);
    if (!pool) throw new OrchError('NOT_FOUND', `pool '${id}' not found`);
    return pool;
  };

  // Operations that change a pool honour the key's pool limit; read-only views show every pool.
  const controlPool = (req: FastifyRequest<{ Params: { id: string } }>) =>
    o.auth.authenticate(req.headers.authorization, 'control', req.params.id);

  app.post<{ Params: { id: string }; Body: unknown }>('/v1/pools/:id/drain', async (req, reply) => {
    controlPool(req);
    const body = o.validate('DrainRequest', req.body) as { deadline_ms: number };
    const pool = o.orchestrator.drain(req.params.id, body.deadline_ms);
    return reply.code(202).send({ pool_id: pool.id, operation: 'drain', deadline_ms: body.deadline_ms });
  });

  app.post<{ Params: { id: string }; Body: unknown }>('/v1/pools/:id/reload', async (req, reply) => {
    controlPool(req);
    const body = o.validate('ReloadRequest', req.body) as {
      new_model_ref?: string;
      rollback?: true;
      deadline_ms?: number;
    };
    const deadline = body.deadline_ms ?? 30_000;
    const target =
      body.new_model_ref !== undefined ? { modelRef: body.new_model_ref } : { rollback: true as const };
    const { pool } = await o.orchestrator.reload(req.params.id, target, deadline);
    return reply.code(202).send({ pool_id: pool.id, operation: 'reload', deadline_ms: deadline });
  });

  app.get<{ Params: { id: string } }>('/v1/pools/:id/health', async (req) => {
    control(req);
    return poolHealth(poolOf(req.params.id));
  });

  app.get('/v1/replicasets', async (req) => {
    control(req);
    return { replica_sets: replicaSets(o.orchestrator.pools).map(replicaSetBody) };
  });

  app.get('/v1/capabilities', async (req) => {
    control(req);
    const engines = [...new Set(o.orchestrator.pools.map((p) => p.config.engine))];
    return {
      api_version: API_VERSION,
      engines: engines.map((engine) => {
        const pools = o.orchestrator.pools.filter((p) => p.config.engine === engine);
        return {
          engine,
          ctx_max: Math.max(...pools.map((p) => p.config.ctx)),
          supported_workloads: pools.some((p) => p.servesEmbeddings())
            ? ['completion', 'embedding']
            : ['completion'],
          rate_limits: Object.fromEntries(
            [...o.orchestrator.tenants()].map(([id, t]) => [
              id,
              {
                ...(t.rps === undefined ? {} : { rps: t.rps, burst: t.burst }),
                ...(t.maxConcurrent === undefined ? {} : { max_concurrent: t.maxConcurrent }),
                weight: t.weight,
              },
            ]),
          ),
          features: {
            streaming: true,
            cancel: true,
            embeddings: pools.some((p) => p.servesEmbeddings()),
            continuous_batching: pools.some((p) => p.continuousBatching()),
          },
          simulated: pools.every((p) => p.simulated),
          engine_versions: [...new Set(pools.map((p) => p.engineVersion()))],
        };
      }),
    };
  });
}
