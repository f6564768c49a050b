/**
 * Prefix-aware placement through the public API: tasks sharing a long prompt prefix land on the
 * replica that served it while that replica has a free slot, and `kv_warmth` is false on a
 * replica whose engine restarted since. Which replica served a task, and whether it was warm, is
 * read from the orchestrator's dispatch log lines.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { rendezvousWeight } from '../../src/scheduler/policies/prefix-aware-placement.js';
import { blockHashes, prefixKeyOf } from '../../src/scheduler/prompt-blocks.js';
import {
  call,
  KEYS,
  readStream,
  simPool,
  startHarness,
  task,
  TEST_KEYS,
  until,
  type Harness,
} from '../support/harness.js';

/**
 * A system prompt of about 1,200 characters (several index blocks) whose rendezvous home among
 * the pool's two replicas is `home`: where prefix-aware placement sends it while nothing is
 * cached.
 */
function systemPromptHomedOn(home: string, text: string): string {
  for (let v = 0; ; v++) {
    const prompt = `[${v}] ${text}`;
    const key = prefixKeyOf(blockHashes(prompt)) ?? '';
    const [first] = ['p0-r0', 'p0-r1'].sort((a, b) => rendezvousWeight(key, b) - rendezvousWeight(key, a));
    if (first === home) return prompt;
  }
}
const ALPHA = systemPromptHomedOn('p0-r0', 'You are a careful assistant for the alpha project. '.repeat(24));
const BETA = systemPromptHomedOn(
  'p0-r1',
  'Answer as the beta support desk, briefly and politely. '.repeat(22),
);

interface Dispatch {
  readonly job_id: string;
  readonly replica_id: string;
  readonly kv_warmth: boolean;
}

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    scheduling: { placement: 'prefix-aware' },
    pools: [
      simPool('p0', 'llamacpp', {
        replicas: 2,
        launch: {
          worker: 'sim',
          parallel: 2,
          startup_timeout_ms: 30_000,
          // A loaded test machine must not make a replica unready: placement would change.
          health_interval_ms: 200,
          health_timeout_ms: 10_000,
          // Slow enough that a long task holds its slot until it is canceled.
          sim: { tokens_per_s: 50 },
        },
      }),
    ],
  });
});
afterAll(async () => h?.close());

const pool = (): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === 'p0');
  if (!p) throw new Error('no pool p0');
  return p;
};

function dispatchOf(id: string): Dispatch | undefined {
  return h.logs.lines
    .filter((l) => l.includes('"event":"task.dispatched"') && l.includes(id))
    .map((l) => JSON.parse(l) as Dispatch)
    .find((d) => d.job_id === id);
}

async function submit(prompt: string, extra: Record<string, unknown> = {}): Promise<string> {
  const body = task('p0', { prompt, max_tokens: 2, ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
  expect(r.status).toBe(202);
  await until(() => dispatchOf(body.task_id) !== undefined);
  return body.task_id;
}

/** Runs a short task to its end; returns where it was dispatched. */
async function run(prompt: string, extra: Record<string, unknown> = {}): Promise<Dispatch> {
  const id = await submit(prompt, extra);
  const { events } = await readStream(h.url, id, { key: KEYS.alice });
  expect(events.at(-1)?.event).toBe('end');
  const d = dispatchOf(id);
  if (!d) throw new Error('not dispatched');
  return d;
}

const cancel = async (id: string): Promise<void> => {
  expect((await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key: KEYS.alice })).status).toBe(204);
};

describe('prefix-aware placement (scheduling.placement: prefix-aware)', () => {
  it('sends requests sharing a long prefix to the replica that holds it, while it has a free slot', async () => {
    await until(() => pool().readyReplicas().length === 2, 60_000);
    // ALPHA lands on its home r0; while it runs, BETA goes to its home, the idle r1.
    const holdA = await submit(`${ALPHA} Q: first?`, { max_tokens: 600 });
    const holdB = await submit(`${BETA} Q: first?`, { max_tokens: 600 });
    expect(dispatchOf(holdA)?.replica_id).toBe('p0-r0');
    expect(dispatchOf(holdB)?.replica_id).toBe('p0-r1');
    await cancel(holdA);
    await cancel(holdB);
    await until(() => pool().running.size === 0);

    // Both replicas idle, every task a new session: least-loaded would send all of them to r0.
    for (let k = 0; k < 3; k++) {
      const a = await run(`${ALPHA} Q: question ${k}?`);
      const b = await run(`${BETA} Q: question ${k}?`);
      expect(a).toMatchObject({ replica_id: 'p0-r0', kv_warmth: true });
      expect(b).toMatchObject({ replica_id: 'p0-r1', kv_warmth: true });
    }
    // An unrelated prompt is cold everywhere.
    expect(await run(`Unrelated text ${randomUUID()}`)).toMatchObject({ kv_warmth: false });

    // r0's two slots busy with ALPHA: the next ALPHA request takes r1's free slot.
    const busy = [
      await submit(`${ALPHA} Q: long one?`, { max_tokens: 600 }),
      await submit(`${ALPHA} Q: long two?`, { max_tokens: 600 }),
    ];
    expect(busy.map((id) => dispatchOf(id)?.replica_id)).toEqual(['p0-r0', 'p0-r0']);
    const spill = await submit(`${ALPHA} Q: spill?`, { max_tokens: 600 });
    expect(dispatchOf(spill)).toMatchObject({ replica_id: 'p0-r1', kv_warmth: false });
    for (const id of [...busy, spill]) await cancel(id);
    await until(() => pool().running.size === 0);
  });

  it('reports kv_warmth false on the session replica once its engine restarted', async () => {
    await until(() => pool().readyReplicas().length === 2, 60_000);
    const session = randomUUID();
    // A prompt of its own: only this session's turns share it.
    const own = `Session ${session} keeps its own long context. `.repeat(16);
    const first = await run(`${own} Q: my own question`, { session_id: session, max_tokens: 4 });
    const second = await run(`${own} Q: my own question, again`, { session_id: session, max_tokens: 4 });
    expect(second).toMatchObject({ replica_id: first.replica_id, kv_warmth: true });

    const replicaId = first.replica_id;
    expect(await pool().supervisor.restartReplica(replicaId, 'test: a fresh engine')).toBe(true);
    await until(() => pool().replica(replicaId)?.state.kind === 'ready');
    const session2 = await call(h.url, 'GET', `/v1/sessions/${session}`, { key: KEYS.alice });
    expect(session2.json).toMatchObject({ replica_id: replicaId, kv_warmth: false });

    // No replica holds anything of it now: placed at its home, where it ran before, and cold there.
    const third = await run(`${own} Q: my own question, once more`, { session_id: session, max_tokens: 4 });
    expect(third).toMatchObject({ replica_id: replicaId, kv_warmth: false });
  });
});
