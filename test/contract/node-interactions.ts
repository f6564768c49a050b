/**
 * Consumer contracts of pool-managerd (SPEC §5, §16): the node endpoints as the node's own client
 * (`orchestratorClient` of `src/nodes/pool-managerd.ts`) calls them, with every status the
 * orchestrator can answer. Each entry is one Pact interaction plus what pool-managerd relies on in
 * the answer (the heartbeat period, the commands, 401/404 as "register again").
 */
import { MatchersV3 as M, type V3Request, type V3Response } from '@pact-foundation/pact';
import { expect } from 'vitest';
import { OrchHttpError, type OrchClient } from '../../src/index.js';
import type { NodeReport } from '../../src/client/types.js';
import type { PactInteraction } from './pact-runner.js';

/** Node credentials the provider is configured with (`nodes[].sha256`). */
export const NODE_CREDENTIALS = {
  'pact-node-a': 'pact-node-a-credential',
  'pact-node-b': 'pact-node-b-credential',
};
/** The remote pool whose engines node A runs (`pools[].hosts`). */
export const REMOTE_POOL = 'pact-remote';

export interface NodeClients {
  /** pool-managerd of node A, with its credential. */
  readonly nodeA: OrchClient;
  /** pool-managerd of node B (configured, never registered). */
  readonly nodeB: OrchClient;
  /** A node sending a credential the orchestrator does not know. */
  readonly stranger: OrchClient;
}

export type NodeInteraction = PactInteraction<NodeClients>;

const CID = {
  'X-Correlation-Id': M.regex('^[A-Za-z0-9._:-]{1,128}$', '5d1e3c9a-7f0b-4d2e-8a61-0c9b2f4e7a13'),
};
const JSON_CT = { 'Content-Type': 'application/json; charset=utf-8' };
const A = 'pact-node-a';
const B = 'pact-node-b';

/** A report as pool-managerd sends it: its pools, their replicas, its GPU reading's freshness. */
const report = (node: string): NodeReport => ({
  node_id: node,
  pools: [
    {
      pool_id: REMOTE_POOL,
      simulated: true,
      // pool-managerd names where each engine listens, starting or not.
      replicas: [{ replica_id: `${REMOTE_POOL}-r0`, state: 'starting', base_url: 'http://127.0.0.1:18080' }],
    },
  ],
  gpu_state: { stale: false, last_good_ms: 1_700_000_000_000 },
});

const send = (path: string, body: unknown, credential?: string): V3Request => ({
  method: 'POST',
  path,
  headers: {
    'Content-Type': 'application/json',
    ...(credential === undefined ? {} : { Authorization: `Bearer ${credential}` }),
  },
  body: body,
});
const ok = (body: unknown): V3Response => ({ status: 200, headers: { ...JSON_CT, ...CID }, body: body });
const envelope = (status: number, code: string): V3Response => ({
  status,
  headers: { ...JSON_CT, ...CID },
  body: { code, message: M.string(`${code.toLowerCase()} explained`), retriable: false },
});

async function fails(p: Promise<unknown>, status: number, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OrchHttpError);
  const e = err as OrchHttpError;
  expect([e.status, e.code]).toEqual([status, code]);
  expect(e.correlationId).toBeTruthy();
}

const heartbeatPath = (node: string) => `/v1/nodes/${node}/heartbeat`;
const cred = NODE_CREDENTIALS;
/** Not a valid report: `pools` is required. */
const noPools = { node_id: A } as unknown as NodeReport;

export const NODE_INTERACTIONS: NodeInteraction[] = [
  {
    description: 'a registration of a node',
    request: send('/v1/nodes/register', report(A), cred[A]),
    response: ok({ node_id: A, heartbeat_ms: M.integer(750), timeout_ms: M.integer(3000) }),
    run: async (c) => {
      const answer = await c.nodeA.registerNode(report(A));
      expect(answer.node_id).toBe(A);
      // pool-managerd heartbeats at the orchestrator's period, well inside its timeout.
      expect(answer.heartbeat_ms).toBeGreaterThan(0);
      expect(answer.heartbeat_ms).toBeLessThan(answer.timeout_ms);
    },
  },
  {
    description: 'a registration of a node without its pools',
    request: send('/v1/nodes/register', noPools, cred[A]),
    response: envelope(400, 'INVALID_PARAMS'),
    run: (c) => fails(c.nodeA.registerNode(noPools), 400, 'INVALID_PARAMS'),
  },
  {
    description: 'a registration with an unknown credential',
    request: send('/v1/nodes/register', report(A), 'not-a-node-credential'),
    response: envelope(401, 'UNAUTHORIZED'),
    run: (c) => fails(c.stranger.registerNode(report(A)), 401, 'UNAUTHORIZED'),
  },
  {
    description: 'a registration naming another node than its credential',
    request: send('/v1/nodes/register', report(A), cred[B]),
    response: envelope(401, 'UNAUTHORIZED'),
    run: (c) => fails(c.nodeB.registerNode(report(A)), 401, 'UNAUTHORIZED'),
  },
  {
    state: 'the next request fails with an internal error',
    description: 'a registration that meets an internal fault',
    request: send('/v1/nodes/register', report(A), cred[A]),
    response: envelope(500, 'INTERNAL'),
    run: (c) => fails(c.nodeA.registerNode(report(A)), 500, 'INTERNAL'),
  },
  {
    state: 'the node is registered',
    params: { node_id: A },
    description: 'a heartbeat of a registered node',
    request: send(heartbeatPath(A), report(A), cred[A]),
    response: ok({ commands: [] }),
    run: async (c) => expect((await c.nodeA.nodeHeartbeat(A, report(A))).commands).toEqual([]),
  },
  {
    state: 'the node is registered and a command waits for it',
    params: { node_id: A, pool_id: REMOTE_POOL },
    description: 'a heartbeat whose answer carries a command',
    request: send(heartbeatPath(A), report(A), cred[A]),
    response: ok({ commands: [{ id: M.regex('^cmd-[0-9]+$', 'cmd-1'), op: 'stop', pool_id: REMOTE_POOL }] }),
    run: async (c) => {
      const [cmd, ...rest] = (await c.nodeA.nodeHeartbeat(A, report(A))).commands;
      expect(rest).toEqual([]);
      // pool-managerd executes it and reports the outcome under this id in a later heartbeat.
      expect(cmd).toMatchObject({ op: 'stop', pool_id: REMOTE_POOL });
      expect(cmd?.id).toMatch(/^cmd-/);
    },
  },
  {
    state: 'the node is registered',
    params: { node_id: A },
    description: 'a heartbeat whose report names another node',
    request: send(heartbeatPath(A), report(B), cred[A]),
    response: envelope(400, 'INVALID_PARAMS'),
    run: (c) => fails(c.nodeA.nodeHeartbeat(A, report(B)), 400, 'INVALID_PARAMS'),
  },
  {
    description: 'a heartbeat with an unknown credential',
    request: send(heartbeatPath(A), report(A), 'not-a-node-credential'),
    response: envelope(401, 'UNAUTHORIZED'),
    run: (c) => fails(c.stranger.nodeHeartbeat(A, report(A)), 401, 'UNAUTHORIZED'),
  },
  {
    description: 'a heartbeat of a node that is not registered',
    request: send(heartbeatPath(B), report(B), cred[B]),
    // pool-managerd registers again on this answer (e.g. after the orchestrator restarted).
    response: envelope(404, 'NOT_FOUND'),
    run: (c) => fails(c.nodeB.nodeHeartbeat(B, report(B)), 404, 'NOT_FOUND'),
  },
  {
    state: 'the next request fails with an internal error',
    description: 'a heartbeat that meets an internal fault',
    request: send(heartbeatPath(A), report(A), cred[A]),
    response: envelope(500, 'INTERNAL'),
    run: (c) => fails(c.nodeA.nodeHeartbeat(A, report(A)), 500, 'INTERNAL'),
  },
];
