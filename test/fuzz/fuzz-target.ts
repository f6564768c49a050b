/**
 * The orchestrator the fuzzer talks to (simulated pools of every engine, the test keys, a node
 * credential, no test-only routes) and the HTTP client that sends raw requests to it: paths go
 * on the wire as built (no URL normalisation), every request has a deadline.
 */
import { Client, errors } from 'undici';
import { sha256Hex } from '../../src/http/auth.js';
import { KEYS, TEST_KEYS, simPool, startHarness, type Harness } from '../support/harness.js';
import type { Answer } from './oracle.js';
import type { BuiltRequest, FuzzWorld } from './cases.js';

const NODE_CREDENTIAL = 'fuzz-node-credential';

/** Fixed ids, the same for every seed, so cases reach one another's tasks and sessions. */
function fixedUuids(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`);
}

export const WORLD: FuzzWorld = {
  pools: {
    'fz-llama': 'llamacpp',
    'fz-vllm': 'vllm',
    'fz-tgi': 'tgi',
    'fz-triton': 'triton',
    'fz-embed': 'vllm',
  },
  sparePool: 'fz-spare',
  keys: { data: KEYS.alice, control: KEYS.ops },
  node: { id: 'fz-node', credential: NODE_CREDENTIAL },
  taskIds: fixedUuids('f0000000', 6),
  sessionIds: fixedUuids('5e000000', 4),
  catalogIds: ['fz-cat-a', 'fz-cat-b', 'fz-vllm'],
};

/** Starts the orchestrator under test. */
export async function startFuzzTarget(): Promise<Harness> {
  const sim = { tokens_per_s: 5_000 };
  return startHarness({
    auth: { keys: TEST_KEYS },
    testing: { provider_states: false },
    nodes: [{ id: WORLD.node.id, sha256: sha256Hex(NODE_CREDENTIAL) }],
    pools: [
      simPool('fz-llama', 'llamacpp', { sim }),
      simPool('fz-vllm', 'vllm', { sim }),
      simPool('fz-tgi', 'tgi', { sim }),
      simPool('fz-triton', 'triton', { sim }),
      simPool('fz-embed', 'vllm', {
        launch: { worker: 'sim', parallel: 2, extra_args: ['--task', 'embed'], sim },
      }),
      simPool('fz-spare', 'vllm', { sim }),
    ],
  });
}

/** A connection to the target and `send`, which never throws. */
export class FuzzClient {
  private readonly client: Client;

  constructor(
    url: string,
    private readonly timeoutMs = 20_000,
  ) {
    this.client = new Client(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, pipelining: 1 });
  }

  async send(req: BuiltRequest): Promise<Answer> {
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new Error(`no answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    try {
      const res = await this.client.request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        signal: ac.signal,
        ...(req.body === undefined ? {} : { body: req.body }),
      });
      const type = String(res.headers['content-type'] ?? '');
      let text: string;
      if (type.startsWith('text/event-stream')) {
        // A stream that started is an answer; its events are another suite's business.
        text = '';
        res.body.on('error', () => {});
        res.body.destroy();
      } else text = await res.body.text();
      return { kind: 'answer', status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      const e = err as Error;
      if (err instanceof errors.InvalidArgumentError) return { kind: 'unsendable', error: e.message };
      return { kind: 'no-answer', error: `${e.name}: ${e.message}` };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.client.destroy();
  }
}
