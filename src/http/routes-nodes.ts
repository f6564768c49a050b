/** Node endpoints (SPEC §5): pool-managerd registers and heartbeats with its node credential. */
import type { FastifyInstance } from 'fastify';
import type { NodeReport } from '../nodes/node-protocol.js';
import type { NodeRegistry } from '../nodes/node-registry.js';

export interface NodeRoutesOptions {
  readonly nodes: NodeRegistry;
  readonly validate: (schema: string, body: unknown) => unknown;
}

export function registerNodeRoutes(app: FastifyInstance, o: NodeRoutesOptions): void {
  app.post(
    '/v1/nodes/register',
    // Some node's credential before the body is read; the body names which node it must be.
    { onRequest: async (req) => o.nodes.authenticateAnyNode(req.headers.authorization) },
    async (req) => {
      const report = o.validate('NodeReport', req.body) as NodeReport;
      o.nodes.authenticate(report.node_id, req.headers.authorization);
      return o.nodes.register(report);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/nodes/:id/heartbeat',
    {
      // The node id is in the path: its credential is checked before the body is read.
      onRequest: async (req) => o.nodes.authenticate(req.params.id, req.headers.authorization),
    },
    async (req) => {
      const report = o.validate('NodeReport', req.body) as NodeReport;
      if (report.node_id !== req.params.id) o.validate('NodeReport', { ...report, node_id: 1 });
      return o.nodes.heartbeat(report);
    },
  );
}
