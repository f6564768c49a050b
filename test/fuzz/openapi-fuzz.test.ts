/**
 * OpenAPI-driven fuzzing (issue 18): generated requests over every operation of data.yaml,
 * control.yaml and openai.yaml — path parameters, query strings, headers, credentials and
 * mutated bodies — against one orchestrator over real HTTP. No answer is a 5xx (503 only as
 * backpressure with retry headers), every invalid request gets a 4xx, every non-2xx carries
 * `X-Correlation-Id` and the error body of its surface, and every request is answered.
 *
 * Bounded here (FUZZ_RUNS, default 500); `npm run fuzz` runs a long survey. The seed is
 * printed; FUZZ_SEED=<seed> replays the same cases.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Harness } from '../support/harness.js';
import { KEYS, call } from '../support/harness.js';
import { FuzzClient, startFuzzTarget } from './fuzz-target.js';
import { OPERATIONS, fuzzProperty } from './fuzz-runner.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 1818);
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 500);

let h: Harness;
let client: FuzzClient;

beforeAll(async () => {
  h = await startFuzzTarget();
  client = new FuzzClient(h.url);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await h?.close();
});

describe('fuzzing every OpenAPI operation', () => {
  it('covers every operation of the three documents', () => {
    const ids = OPERATIONS.map((o) => `${o.method} ${o.path}`);
    expect(ids).toEqual(
      expect.arrayContaining(['POST /v1/tasks', 'POST /v1/nodes/{id}/heartbeat', 'POST /v1/embeddings']),
    );
    expect(new Set(OPERATIONS.map((o) => o.plane))).toEqual(new Set(['data', 'control', 'openai']));
  });

  it(`never answers 5xx or outside the envelope (seed ${SEED}, ${RUNS} runs)`, async () => {
    console.log(`fuzz: seed ${SEED}, ${RUNS} runs (FUZZ_SEED=${SEED} replays them)`);
    await fc.assert(fuzzProperty(client), { seed: SEED, numRuns: RUNS });
  }, 600_000);
});

describe('fuzz findings, each a regression test', () => {
  it('refuses an OpenAI `user` that is not a string with 400 naming it (was ignored: 200)', async () => {
    for (const path of ['/v1/embeddings', '/v1/completions']) {
      const body =
        path === '/v1/embeddings'
          ? { model: 'fz-embed', input: ['a'], user: ['a', 'b'] }
          : { model: 'fz-vllm', prompt: 'x', max_tokens: 1, user: 7 };
      const r = await call(h.url, 'POST', path, { key: KEYS.alice, body });
      expect(r.status, r.text).toBe(400);
      expect(r.json).toMatchObject({ error: { code: 'INVALID_PARAMS', param: 'user' } });
    }
  });
});
