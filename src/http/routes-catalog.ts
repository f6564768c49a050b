/** Catalog endpoints (SPEC §6, §8), control scope. */
import type { FastifyInstance } from 'fastify';
import type { CatalogAddRequest, CatalogService } from '../catalog/catalog-service.js';
import type { CatalogRecord, LifecycleState } from '../persistence/store.js';
import type { Authenticator } from './auth.js';

export interface CatalogRoutesOptions {
  readonly catalog: CatalogService;
  readonly auth: Authenticator;
  readonly trustPolicy: 'strict' | 'permissive';
  readonly validate: (schema: string, body: unknown) => unknown;
}

export function registerCatalogRoutes(app: FastifyInstance, o: CatalogRoutesOptions): void {
  const control = (authorization: string | undefined) => o.auth.authenticate(authorization, 'control');
  const view = (m: CatalogRecord) => ({
    id: m.id,
    digest: m.digest,
    source: m.source,
    tags: m.tags,
    state: m.state,
    trust_policy: o.trustPolicy,
    verified: m.verified,
    created_ms: m.createdMs,
    ...(m.canaryOf === undefined ? {} : { canary_of: m.canaryOf, canary_percent: m.canaryPercent ?? 0 }),
    ...(m.sbom === undefined ? {} : { sbom: m.sbom }),
  });

  app.post('/v1/catalog/models', async (req, reply) => {
    control(req.headers.authorization);
    const body = o.validate('CatalogModelRequest', req.body) as CatalogAddRequest;
    return reply.code(201).send(view(await o.catalog.add(body)));
  });

  app.get('/v1/catalog/models', async (req) => {
    control(req.headers.authorization);
    return { models: (await o.catalog.list()).map(view) };
  });

  app.get<{ Params: { id: string } }>('/v1/catalog/models/:id', async (req) => {
    control(req.headers.authorization);
    // `{id}` may also be `id@sha256:<hex>` or `tag:<tag>`, resolved to one immutable entry.
    const m = await o.catalog.resolveRef(req.params.id);
    const history = (await o.catalog.history(m.id)).map((c) => ({
      at_ms: c.atMs,
      ...(c.from === undefined ? {} : { from: c.from }),
      to: c.to,
      ...(c.reason === undefined ? {} : { reason: c.reason }),
    }));
    return { ...view(m), history };
  });

  app.post<{ Params: { id: string } }>('/v1/catalog/models/:id/verify', async (req) => {
    control(req.headers.authorization);
    const v = await o.catalog.verify(req.params.id);
    return {
      id: req.params.id,
      result: v.ok ? 'verified' : 'failed',
      reason: v.reason,
      ...(v.digest === undefined ? {} : { digest: v.digest }),
    };
  });

  app.post<{ Params: { id: string } }>('/v1/catalog/models/:id/state', async (req) => {
    control(req.headers.authorization);
    const body = o.validate('StateRequest', req.body) as {
      state: LifecycleState;
      deadline_ms?: number;
      canary_of?: string;
      percent?: number;
    };
    const canary =
      body.canary_of === undefined ? undefined : { of: body.canary_of, percent: body.percent ?? 10 };
    return view(await o.catalog.setState(req.params.id, body.state, undefined, body.deadline_ms, canary));
  });
}
