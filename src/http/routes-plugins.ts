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

/** The reload body: absent, `{}` or `{sha256}` (moves the digest pin). */
function reloadRequest(body: unknown): PluginReloadRequest {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body))
    throw new OrchError('INVALID_PARAMS', 'body: must be an object');
  const extra = Object.keys(body).filter((k) => k !== 'sha256');
  if (extra.length > 0) throw new OrchError('INVALID_PARAMS', `body.${extra[0]}: unknown field`);
  const { sha256 } = body as { sha256?: unknown };
  if (sha256 === undefined) return {};
  if (typeof sha256 !== 'string' || !SHA256.test(sha256))
    throw new OrchError('INVALID_PARAMS', 'body.sha256: must be 64 lowercase hex digits');
  return { sha256 };
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
