/**
 * `POST /__test/provider-states` — Pact provider states (SPEC §16). It exists only when the
 * configuration enables `testing.provider_states`, which the prod profile refuses. The Pact
 * verifier calls it before each interaction (`{state, params, action: setup|teardown}`); each
 * state is brought about through the orchestrator's own operations, never by faking answers.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ArtifactRegistry } from '../artifacts/artifact-registry.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import type { Principal, SubmitInput } from '../domain/submit.js';
import type { Engine, Priority } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import { writeTinyGguf } from '../models/tiny-gguf.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { NodeRegistry } from '../nodes/node-registry.js';
import type { TaskRequestValidator } from './openapi.js';
import { toSubmitInput } from './routes-data.js';
import type { ToolProxy } from '../tools/tool-proxy.js';

export interface ProviderStatesOptions {
  readonly orchestrator: Orchestrator;
  readonly catalog?: CatalogService | undefined;
  readonly artifacts?: ArtifactRegistry | undefined;
  /** pool-managerd registrations, for the node states. */
  readonly nodes?: NodeRegistry | undefined;
  /** The data plane's request validator: a state's task is submitted exactly as a client's would be. */
  readonly validateTaskRequest?: TaskRequestValidator | undefined;
  /** The tool proxy, for the tool states. */
  readonly tools?: ToolProxy | undefined;
}

type Params = Record<string, unknown>;
interface StateChange {
  readonly state?: string;
  readonly params?: Params;
  readonly action?: 'setup' | 'teardown';
}

const str = (p: Params, k: string, d?: string): string => {
  const v = p[k] ?? d;
  if (typeof v !== 'string') throw new OrchError('INVALID_PARAMS', `provider state needs params.${k}`);
  return v;
};

export function registerProviderStates(app: FastifyInstance, o: ProviderStatesOptions): void {
  const orch = o.orchestrator;
  const owned: string[] = [];
  let faultArmed = false;

  const principal = (tenant: string): Principal => ({
    tenant,
    keyId: 'provider-state',
    scopes: ['data', 'control'],
  });
  const submit = async (p: Params, extra: Partial<SubmitInput> = {}): Promise<string> => {
    const taskId = str(p, 'task_id', crypto.randomUUID());
    const input: SubmitInput = {
      taskId,
      sessionId: str(p, 'session_id', crypto.randomUUID()),
      workload: 'completion',
      modelRef: str(p, 'model_ref'),
      engine: str(p, 'engine', 'vllm') as Engine,
      ctx: 2048,
      priority: str(p, 'priority', 'interactive') as Priority,
      seed: 7,
      determinism: 'strict',
      samplerProfileVersion: 'v1',
      prompt: str(p, 'prompt', 'Once upon a time'),
      inputs: undefined,
      expectedTokens: undefined,
      kvHint: undefined,
      maxTokens: typeof p['max_tokens'] === 'number' ? p['max_tokens'] : 8,
      deadlineMs: 600_000,
      ...extra,
    };
    await orch.submit(principal(str(p, 'tenant', 'alice')), input, `provider-state-${taskId}`);
    owned.push(taskId);
    return taskId;
  };
  const task = (p: Params, id: string) => orch.task(principal(str(p, 'tenant', 'alice')), id);
  const until = async (check: () => boolean, what: string): Promise<void> => {
    for (const end = Date.now() + 20_000; !check(); await new Promise((r) => setTimeout(r, 10)))
      if (Date.now() > end) throw new OrchError('INTERNAL', `provider state: timed out waiting for ${what}`);
  };
  const finished = async (p: Params): Promise<void> => {
    const id = await submit(p);
    await until(() => task(p, id).terminal, `task ${id} to end`);
  };
  const catalogModel = async (id: string, file: string): Promise<void> => {
    if (!o.catalog) throw new OrchError('NOT_IMPLEMENTED', 'no catalog');
    await mkdir(dirname(file), { recursive: true });
    await writeTinyGguf(file, { ctx: 256 });
    if (!(await o.catalog.find(id))) await o.catalog.add({ id, source: file });
  };

  // A state may answer values the verifier injects into the interaction's request
  // (`fromProviderState`), e.g. this server's own address.
  const states: Record<string, (p: Params, self: string) => Promise<void | Params>> = {
    'pools are ready': async () => {
      await until(() => orch.pools.every((p) => p.draining || p.readyReplicas().length > 0), 'ready pools');
    },
    'a task that has finished': finished,
    'the pool has measured its decode rate': finished,
    'a task that failed mid-stream': finished,
    'a session with one finished turn': finished,
    'a finished task whose early events were dropped': async (p) => {
      // Brought about by the configured bound (`sse.max_events_per_task`), not by editing the log.
      await finished(p);
      const log = task(p, str(p, 'task_id')).log;
      if (log.unretained(0) === undefined)
        throw new OrchError(
          'INTERNAL',
          `provider state: all ${log.lastSeq} events are retained; lower sse.max_events_per_task or raise max_tokens`,
        );
    },
    'a running task': async (p) => {
      const id = await submit(p);
      await until(() => task(p, id).log.lastSeq >= 1, `task ${id} to start streaming`);
    },
    'the queue of a drop-lru pool is full of interactive work': async (p) => {
      const pool = orch.pools.find((x) => x.id === str(p, 'model_ref'));
      if (!pool) throw new OrchError('NOT_FOUND', 'no such pool');
      // One running, the rest queued: interactive work leaves drop-lru nothing to evict for batch.
      while (pool.queue.size < pool.queue.capacity)
        await submit({ ...p, task_id: crypto.randomUUID(), max_tokens: 1500 }, { deadlineMs: 3_600_000 });
    },
    'pool is unavailable': async (p) => {
      orch.drain(str(p, 'pool_id'), 0);
      await until(() => orch.pools.find((x) => x.id === p['pool_id'])?.draining === true, 'the drain');
    },
    'tenant has used up its rate limit': async (p) => {
      for (let i = 0; i < 16; i++)
        await submit({ ...p, task_id: crypto.randomUUID() }).catch(() => undefined);
    },
    'model is Deprecated': async (p) => {
      const id = str(p, 'model_id');
      await catalogModel(id, str(p, 'path'));
      const state = o.catalog?.stateOf(id);
      if (state === 'Draft') await o.catalog?.setState(id, 'Active');
      if (o.catalog?.stateOf(id) !== 'Deprecated')
        await o.catalog?.setState(id, 'Deprecated', 'provider state');
    },
    'an identical enqueue of the task has ended': async (p) => {
      // The task is admitted from the very body the interaction sends (validated and converted as
      // `POST /v1/tasks` does), so its resubmission matches the used id's digest.
      if (!o.validateTaskRequest) throw new OrchError('INTERNAL', 'provider state: no request validator');
      const checked = o.validateTaskRequest(structuredClone(p['request']));
      if (!checked.ok) throw new OrchError('INVALID_PARAMS', `${checked.field}: ${checked.message}`);
      const input = toSubmitInput(checked.value);
      const who = principal(str(p, 'tenant', 'alice'));
      await orch.submit(who, input, `provider-state-${input.taskId}`);
      await until(() => orch.task(who, input.taskId).terminal, `task ${input.taskId} to end`);
    },
    'the node is registered': async (p) => {
      if (!o.nodes) throw new OrchError('NOT_FOUND', 'provider state: no node endpoints');
      o.nodes.register({ node_id: str(p, 'node_id'), pools: [] });
    },
    'the node is registered and a command waits for it': async (p) => {
      if (!o.nodes) throw new OrchError('NOT_FOUND', 'provider state: no node endpoints');
      const node = str(p, 'node_id');
      o.nodes.register({ node_id: node, pools: [] });
      // The command a drain of a remote pool queues; the node's next heartbeat answer carries it.
      void o.nodes.command(node, { op: 'stop', pool_id: str(p, 'pool_id') }, 60_000);
    },
    'the next request fails with an internal error': async () => {
      faultArmed = true;
    },
    // The tool proxy fetches this server's own test pages (`/__test/tool-upstream/*`).
    'the tool proxy can reach a test upstream': async (_p, self) => ({ base: self }),
    'the tool rate of the tenant is spent': async (p) => {
      if (!o.tools) throw new OrchError('NOT_FOUND', 'provider state: no tool proxy');
      o.tools.exhaust(str(p, 'tenant'));
    },
    'catalog model exists': async (p) => catalogModel(str(p, 'id'), str(p, 'path')),
    'catalog model is Retired': async (p) => {
      const id = str(p, 'id');
      await catalogModel(id, str(p, 'path'));
      if (o.catalog?.stateOf(id) !== 'Retired') await o.catalog?.setState(id, 'Retired', 'provider state');
    },
    'a model file exists': async (p) => {
      const path = str(p, 'path');
      await mkdir(dirname(path), { recursive: true });
      await writeTinyGguf(path, { ctx: 256 });
    },
    'an artifact exists': async (p) => {
      if (!o.artifacts) throw new OrchError('NOT_IMPLEMENTED', 'no artifact registry');
      await o.artifacts.put(str(p, 'tenant', 'ops'), {
        kind: str(p, 'kind') as 'plan',
        content: p['content'],
      });
    },
    'the engine of a pool has faults': async (p) => {
      // The simulator's own fault injection (`POST /__sim/faults`): the engine really fails, and
      // the orchestrator meets the failure as it would a real engine's.
      const pool = orch.pools.find((x) => x.id === str(p, 'pool_id'));
      if (!pool?.simulated) throw new OrchError('NOT_FOUND', 'provider state: no such simulated pool');
      await until(() => pool.readyReplicas().length > 0, `pool ${pool.id} to be ready`);
      const key = pool.config.launch.apiKey;
      for (const r of pool.readyReplicas()) {
        const res = await fetch(`${r.adapter.baseUrl}/__sim/faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
          body: JSON.stringify(p['faults'] ?? {}),
        });
        if (!res.ok)
          throw new OrchError('INTERNAL', `provider state: the simulator refused the faults (${res.status})`);
      }
    },
  };

  // The armed fault is thrown where a real bug would be: inside request handling.
  app.addHook('preHandler', async (req) => {
    if (faultArmed && !req.url.startsWith('/__test/')) {
      faultArmed = false;
      throw new Error('provider state: injected fault');
    }
  });

  app.post<{ Body: StateChange }>('/__test/provider-states', async (req, reply) => {
    const { state, params = {}, action = 'setup' } = req.body;
    if (action === 'teardown') {
      faultArmed = false;
      for (const id of owned.splice(0))
        try {
          orch.cancel(principal(str(params, 'tenant', 'alice')), id);
        } catch {
          // finished, or owned by another tenant: nothing to free
        }
      return reply.code(200).send({});
    }
    // Interactions without a state still get a setup call: nothing to do.
    if (state === undefined || state === '') return reply.code(200).send({});
    const setup = states[state];
    if (!setup) throw new OrchError('INVALID_PARAMS', `unknown provider state '${state}'`);
    const values = await setup(params, `http://127.0.0.1:${req.socket.localPort}`);
    return reply.code(200).send(values ?? {});
  });

  // Upstream pages for the tool proxy's interactions: a page, and one that never answers (its
  // socket closes when the proxy gives up on it).
  app.get('/__test/tool-upstream/page', async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send('A page for the tool proxy, from ops@example.com.'),
  );
  app.get('/__test/tool-upstream/hang', async (req, reply) => {
    reply.hijack();
    req.raw.socket.once('close', () => reply.raw.destroy());
  });
}
