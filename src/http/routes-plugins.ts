/**
 * `GET /v1/plugins` and `POST /v1/plugins/{id}/reload` (SPEC §10), control scope: the loaded
 * policy plugins with state and counters, and the atomic swap of one plugin to the module now at
 * its configured path. A key's `pools` limit does not apply: plugins belong to no pool.
 */
import type { FastifyInstance } from 'fastify';
import { OrchError } from '../errors/orch-error.js';
import type { PluginReloadRequest, PluginView } from '../plugins/plugin-host.js';
import type { Authenticator } from './auth.js';

export interface PluginRoutesOptions {
  readonly auth: Authenticator;
  /** Absent: no plugin is configured (the list is empty). */
  readonly plugins:
    { list(): PluginView[]; reload(id: string, req: PluginReloadRequest): Promise<PluginView> } | undefined;
}

const SHA256 = /^[0-9a-f]{64}$/;
const ARTIFACT_ID = /^sha256:[0-9a-f]{64}$/;

/** The reload body: absent, `{}`, `{sha256}` (moves the digest pin) and/or `{artifact}` (moves the artifact). */
function reloadRequest(body: unknown): PluginReloadRequest {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new OrchError('INVALID_PARAMS', 'body: must be an object');
  const extra = Object.keys(body).filter((k) => k !== 'sha256' && k !== 'artifact');
  if (extra.length > 0) throw new OrchError('INVALID_PARAMS', `body.${extra[0]}: unknown field`);
  const { sha256, artifact } = body as { sha256?: unknown; artifact?: unknown };
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !SHA256.test(sha256)))
    throw new OrchError('INVALID_PARAMS', 'body.sha256: must be 64 lowercase hex digits');
  if (artifact !== undefined && (typeof artifact !== 'string' || !ARTIFACT_ID.test(artifact)))
    throw new OrchError('INVALID_PARAMS', 'body.artifact: must be an artifact id (sha256:<64 hex digits>)');
  return {
    ...(sha256 === undefined ? {} : { sha256 }),
    ...(artifact === undefined ? {} : { artifact }),
  };
}

export function registerPluginRoutes(app: FastifyInstance, o: PluginRoutesOptions): void {
  app.get('/v1/plugins', async (req) => {
    o.auth.authenticate(req.headers.authorization, 'control');
    return { plugins: o.plugins?.list() ?? [] };
  });

  app.post<{ Params: { id: string }; Body: unknown }>('/v1/plugins/:id/reload', async (req) => {
    o.auth.authenticate(req.headers.authorization, 'control');
    const body = reloadRequest(req.body);
    if (o.plugins === undefined)
      throw new OrchError('NOT_FOUND', `no plugin '${req.params.id}' is configured`);
    return o.plugins.reload(req.params.id, body);
  });
}
