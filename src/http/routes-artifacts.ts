/** Artifact registry endpoints (SPEC §9): any key of the tenant (data or control scope). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ArtifactInput, ArtifactRegistry } from '../artifacts/artifact-registry.js';
import type { Principal } from '../domain/submit.js';
import { OrchError } from '../errors/orch-error.js';
import type { ArtifactRecord } from '../persistence/store.js';
import type { Authenticator } from './auth.js';

export interface ArtifactRoutesOptions {
  readonly registry: ArtifactRegistry;
  readonly auth: Authenticator;
  readonly validate: (schema: string, body: unknown) => unknown;
}

const ref = (a: ArtifactRecord) => ({
  id: a.id,
  kind: a.kind,
  digest: a.digest,
  created_ms: a.createdMs,
  tags: a.tags,
});

export function registerArtifactRoutes(app: FastifyInstance, o: ArtifactRoutesOptions): void {
  const who = (req: FastifyRequest): Principal => {
    try {
      return o.auth.authenticate(req.headers.authorization, 'data');
    } catch (err) {
      if (err instanceof OrchError && err.code === 'FORBIDDEN')
        return o.auth.authenticate(req.headers.authorization, 'control');
      throw err;
    }
  };

  app.post('/v1/artifacts', async (req, reply) => {
    const tenant = who(req).tenant;
    const input = o.validate('ArtifactRequest', req.body) as ArtifactInput;
    const { record } = await o.registry.put(tenant, input);
    return reply.code(201).send(ref(record));
  });

  app.get<{ Querystring: { tag?: string; parent?: string; limit?: string } }>(
    '/v1/artifacts',
    async (req) => {
      const tenant = who(req).tenant;
      const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
        throw new OrchError('INVALID_PARAMS', 'limit: must be a positive integer');
      const list = await o.registry.list(tenant, { tag: req.query.tag, parent: req.query.parent, limit });
      return { artifacts: list.map(ref) };
    },
  );

  app.get<{ Params: { id: string } }>('/v1/artifacts/:id', async (req) => {
    const a = await o.registry.get(who(req).tenant, req.params.id);
    return {
      ...ref(a),
      content: a.content,
      ...(a.parent === undefined ? {} : { parent: a.parent }),
      ...(a.metadata === undefined ? {} : { metadata: a.metadata }),
    };
  });
}
