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

/** The most artifacts one listing returns (control.yaml: `limit` maximum). */
export const MAX_LIST_LIMIT = 1000;

/** A query parameter given at most once: a repeated one is a client error naming it. */
function single(query: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw new OrchError('INVALID_PARAMS', `${name}: must be given at most once`);
  return v;
}

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

  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/v1/artifacts', async (req) => {
    const tenant = who(req).tenant;
    const tag = single(req.query, 'tag');
    const parent = single(req.query, 'parent');
    const given = single(req.query, 'limit');
    const limit = given === undefined ? undefined : Number(given);
    if (limit !== undefined && (!/^\d+$/.test(given ?? '') || limit < 1 || limit > MAX_LIST_LIMIT))
      throw new OrchError('INVALID_PARAMS', `limit: must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    const list = await o.registry.list(tenant, { tag, parent, limit });
    return { artifacts: list.map(ref) };
  });

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
