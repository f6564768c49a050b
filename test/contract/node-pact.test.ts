/**
 * The node contract (SPEC §5, §16): pool-managerd is the consumer of `POST /v1/nodes/register`
 * and `POST /v1/nodes/{id}/heartbeat`. The consumer suite drives pool-managerd's own client against
 * Pact's mock and writes `contracts/pacts/pool-managerd-llama-orch.json`; the provider suite
 * replays that file against a real orchestrator configured with the node credentials.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import { orchestratorClient } from '../../src/nodes/pool-managerd.js';
import { TEST_CTX, simPool, startHarness, type Harness } from '../support/harness.js';
import { documentedPairs, isNodePath, readPact, uncovered, undocumented } from './coverage.js';
import { NODE_CREDENTIALS, NODE_INTERACTIONS, REMOTE_POOL, type NodeClients } from './node-interactions.js';
import { verifyInteraction, verifyProvider } from './pact-runner.js';

process.env['PACT_DO_NOT_TRACK'] = 'true';
const PACTS = join(process.cwd(), 'contracts', 'pacts');
const PACT_FILE = join(PACTS, 'pool-managerd-llama-orch.json');

const clients = (url: string, dispatcher: Agent): NodeClients => ({
  nodeA: orchestratorClient(url, NODE_CREDENTIALS['pact-node-a'], dispatcher),
  nodeB: orchestratorClient(url, NODE_CREDENTIALS['pact-node-b'], dispatcher),
  stranger: orchestratorClient(url, 'not-a-node-credential', dispatcher),
});

describe('consumer: pool-managerd against the Pact mock', () => {
  beforeAll(async () => {
    await mkdir(PACTS, { recursive: true });
    await rm(PACT_FILE, { force: true });
  });

  for (const i of NODE_INTERACTIONS)
    it(i.description, () => verifyInteraction('pool-managerd', PACTS, i, clients));

  it('covers every (operation, status) pair of the node endpoints', async () => {
    const pact = await readPact(PACT_FILE);
    const pairs = documentedPairs().filter((p) => isNodePath(p.path));
    // Read from control.yaml: registration and heartbeat, each with all its statuses.
    expect(new Set(pairs.map((p) => `${p.method} ${p.path}`))).toEqual(
      new Set(['POST /v1/nodes/register', 'POST /v1/nodes/{id}/heartbeat']),
    );
    expect(uncovered(pairs, pact)).toEqual([]);
    expect(undocumented(documentedPairs(), pact)).toEqual([]);
  });
});

describe('provider: a real orchestrator honours the interactions of pool-managerd', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      testing: { provider_states: true },
      nodes: Object.entries(NODE_CREDENTIALS).map(([id, c]) => ({ id, sha256: sha256Hex(c) })),
      pools: [
        simPool('pact-local', 'vllm'),
        {
          id: REMOTE_POOL,
          engine: 'vllm',
          model: { id: REMOTE_POOL },
          ctx: TEST_CTX,
          devices: 'cpu',
          hosts: ['pact-node-a'],
          launch: { parallel: 2 },
        },
      ],
    });
  }, 60_000);
  afterAll(() => h.close());

  it('verifies the committed pact file', async () => {
    await verifyProvider(PACT_FILE, h.url);
  }, 120_000);
});
