/**
 * `GET /v1/nodes` (control plane): the pool-managerd nodes with their liveness and GPU reading,
 * for `llorch status`-style views and the operator console's host list.
 */
import type { FastifyInstance } from 'fastify';
import type { NodeRegistry } from '../nodes/node-registry.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { Authenticator } from './auth.js';
import type { components } from './generated/control.js';

export type NodeSummary = components['schemas']['NodeSummary'];

export interface NodeListRoutesOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Authenticator;
  /** Absent when the orchestrator accepts no nodes: the list is empty. */
  readonly nodes: NodeRegistry | undefined;
}

export function registerNodeListRoutes(app: FastifyInstance, o: NodeListRoutesOptions): void {
  app.get('/v1/nodes', async (req): Promise<components['schemas']['NodeList']> => {
    o.auth.authenticate(req.headers.authorization, 'control');
    const poolsOn = (node: string): string[] =>
      o.orchestrator.pools.filter((p) => p.config.hosts.includes(node)).map((p) => p.id);
    const nodes = (o.nodes?.list() ?? []).map((n): NodeSummary => ({
      node_id: n.nodeId,
      state: n.state,
      ...(n.lastSeenMs === undefined ? {} : { last_seen_ms: Math.floor(n.lastSeenMs) }),
      ...(n.silentMs === undefined ? {} : { silent_ms: Math.floor(n.silentMs) }),
      pools: poolsOn(n.nodeId),
      gpus: n.gpus?.gpus.length ?? 0,
      gpu_stale: n.gpus?.stale ?? false,
      ...(n.gpus?.error === undefined ? {} : { gpu_error: n.gpus.error }),
      ...(n.gpus === undefined ? {} : { gpu_last_good_ms: Math.floor(n.gpus.lastGoodMs) }),
    }));
    return { nodes };
  });
}
