/** `GET /v1/plugins` (SPEC §10), control scope: the loaded policy plugins with state and counters. */
import type { FastifyInstance } from 'fastify';
import type { PluginView } from '../plugins/plugin-host.js';
import type { Authenticator } from './auth.js';

export interface PluginRoutesOptions {
  readonly auth: Authenticator;
  /** Absent: no plugin is configured (the list is empty). */
  readonly plugins: { list(): PluginView[] } | undefined;
}

export function registerPluginRoutes(app: FastifyInstance, o: PluginRoutesOptions): void {
  app.get('/v1/plugins', async (req) => {
    o.auth.authenticate(req.headers.authorization, 'control');
    return { plugins: o.plugins?.list() ?? [] };
  });
}
