/**
 * A vLLM pool serving a pooling model (`--task embed`: one task per engine process, no
 * generation) passes its self-test with an embedding instead of a decode, serves embedding tasks
 * through the public API, and refuses completions with a typed error naming the pool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  type Harness,
} from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      simPool('embedder', 'vllm', {
        launch: { worker: 'sim', parallel: 2, extra_args: ['--task', 'embed'], sim: { tokens_per_s: 2_000 } },
      }),
    ],
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('an embedding-only vLLM pool', () => {
  it('becomes ready and serves embeddings end to end', async () => {
    const body = task('embedder', { engine: 'vllm', workload: 'embedding', inputs: ['a', 'b'] });
    delete (body as Record<string, unknown>)['prompt'];
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    const { events } = await readStream(h.url, body.task_id, { key: KEYS.alice });
    const end = events.at(-1);
    expect(end?.event).toBe('end');
    const vectors = end?.data['embeddings'] as number[][];
    expect(vectors).toHaveLength(2);
    expect(vectors[0]!.length).toBeGreaterThan(0);
  });

  it('refuses a completion with a typed error naming the pool', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('embedder', { engine: 'vllm', max_tokens: 4 }),
    });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'INVALID_PARAMS' });
    expect((r.json as { message: string }).message).toMatch(
      /pool 'embedder' \(vllm\) serves an embedding model/,
    );
  });
});
