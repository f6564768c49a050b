/** The tool proxy's routes, `POST /v1/tools/fetch` and `POST /v1/tools/search` (SPEC §10, data scope). */
import type { FastifyInstance } from 'fastify';
import type { ToolProxy } from '../tools/tool-proxy.js';
import type { Authenticator } from './auth.js';

export interface ToolRoutesOptions {
  readonly tools: ToolProxy;
  readonly auth: Authenticator;
}

export function registerToolRoutes(app: FastifyInstance, o: ToolRoutesOptions): void {
  app.post('/v1/tools/fetch', async (req) => {
    const who = o.auth.authenticate(req.headers.authorization, 'data');
    return o.tools.fetch(who.tenant, req.body, req.correlationId);
  });
  app.post('/v1/tools/search', async (req) => {
    const who = o.auth.authenticate(req.headers.authorization, 'data');
    return o.tools.search(who.tenant, req.body, req.correlationId);
  });
}
