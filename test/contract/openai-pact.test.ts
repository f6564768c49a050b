/**
 * Consumer-driven contracts of the OpenAI-compatible surface (SPEC §16, §17 §2.7): the consumer
 * suite drives the official `openai` Node client against Pact's mock for every interaction and
 * writes `contracts/pacts/openai-node-llama-orch.json`; the provider suite replays that file
 * against a real orchestrator on simulated engines, with each condition brought about by a
 * provider state; the coverage check holds the file to every (operation, status) pair that
 * contracts/openapi/openai.yaml documents.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import { sha256Hex } from '../../src/http/auth.js';
import { simPool, startHarness, type Harness } from '../support/harness.js';
import {
  OPENAI_INTERACTIONS,
  OPENAI_PACT_DIR,
  OPENAI_PACT_KEYS,
  POOLS,
  type OpenAiClients,
} from './openai-interactions.js';
import { documentedPairs, readPact, uncovered, undocumented } from './coverage.js';
import { verifyInteraction, verifyProvider } from './pact-runner.js';

process.env['PACT_DO_NOT_TRACK'] = 'true';
const PACTS = join(process.cwd(), 'contracts', 'pacts');
const PACT_FILE = join(PACTS, 'openai-node-llama-orch.json');

function clients(url: string, dispatcher: Agent): OpenAiClients {
  // A fresh connection pool per mock server: a port reused by a later mock must not meet a
  // kept-alive socket to an earlier one.
  const viaAgent = ((input: string, init: Record<string, unknown>) =>
    undiciFetch(input, { ...init, dispatcher })) as unknown as typeof fetch;
  const make = (apiKey: string) =>
    new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, fetch: viaAgent });
  return {
    alice: make(OPENAI_PACT_KEYS.alice),
    ops: make(OPENAI_PACT_KEYS.ops),
    limited: make(OPENAI_PACT_KEYS.limited),
    wrong: make(OPENAI_PACT_KEYS.wrong),
  };
}

describe('consumer: the openai client against the Pact mock', () => {
  beforeAll(async () => {
    await mkdir(PACTS, { recursive: true });
    await rm(PACT_FILE, { force: true });
  });

  for (const i of OPENAI_INTERACTIONS) {
    it(i.description, async () => {
      // The example the mock answers must itself satisfy what the provider is held to.
      if (i.bodyRegex !== undefined) expect(String(i.response.body)).toMatch(new RegExp(i.bodyRegex));
      await verifyInteraction(
        'openai-node',
        PACTS,
        i,
        clients,
        (err) => err instanceof OpenAI.APIConnectionError,
      );
    });
  }

  it('covers every (operation, status) pair openai.yaml documents, and no other', async () => {
    const pact = await readPact(PACT_FILE);
    const pairs = documentedPairs(['openai']);
    expect(uncovered(pairs, pact), 'documented pairs without an interaction').toEqual([]);
    expect(undocumented(pairs, pact), 'interactions of undocumented pairs').toEqual([]);
  });
});

/** A simulated pool with `launch` merged over simPool's (not replacing it). */
function pool(
  id: string,
  engine: RawPool['engine'],
  launch: RawPool['launch'],
  extra: Partial<RawPool> = {},
) {
  const base = simPool(id, engine, extra);
  return { ...base, launch: { ...base.launch, ...launch } };
}

describe('provider: a real orchestrator honours every openai-node interaction', () => {
  let h: Harness;
  beforeAll(async () => {
    await mkdir(OPENAI_PACT_DIR, { recursive: true });
    const key = (id: string, raw: string, scope: 'data' | 'control') => ({
      id,
      tenant: id,
      sha256: sha256Hex(raw),
      scopes: [scope],
    });
    // llama-server with --embeddings and mean pooling serves chat, completions and embeddings.
    const both = { embeddings: { pooling: 'mean' as const } };
    h = await startHarness({
      testing: { provider_states: true },
      auth: {
        keys: [
          key('alice', OPENAI_PACT_KEYS.alice, 'data'),
          key('ops', OPENAI_PACT_KEYS.ops, 'control'),
          key('limited', OPENAI_PACT_KEYS.limited, 'data'),
        ],
      },
      limits: { body_limit_bytes: 16_384 },
      // One submission, then a refill no interaction waits for.
      fairness: { tenants: [{ id: 'limited', rps: 0.001, burst: 1 }] },
      catalog: { trust_policy: 'permissive' },
      pools: [
        pool(POOLS.main, 'llamacpp', { ...both, parallel: 4 }),
        pool(POOLS.slow, 'llamacpp', { ...both, parallel: 2, sim: { tokens_per_s: 5 } }),
        pool(POOLS.down, 'llamacpp', both),
        pool(POOLS.old, 'llamacpp', both),
        pool(
          POOLS.timeout,
          'vllm',
          { parallel: 1, sim: { tokens_per_s: 20 } },
          { timeouts: { wall_ms: 300 } },
        ),
        pool(POOLS.fault, 'vllm', { parallel: 1 }),
        pool(POOLS.embedFault, 'vllm', { parallel: 1, extra_args: ['--task', 'embed'] }),
        pool(
          POOLS.embedHang,
          'vllm',
          { parallel: 1, extra_args: ['--task', 'embed'] },
          { timeouts: { wall_ms: 300 } },
        ),
      ],
    });
  }, 60_000);
  afterAll(() => h?.close());

  it('verifies the committed pact file', async () => {
    await verifyProvider(PACT_FILE, h.url);
  }, 180_000);

  it('holds live SSE streams to their regular expression (a stricter one fails)', async () => {
    const pact = JSON.parse(await readFile(PACT_FILE, 'utf8')) as {
      interactions: { description: string; response: { matchingRules?: unknown } }[];
    };
    const stream = pact.interactions.filter((x) => x.description.startsWith('a streamed chat completion'));
    expect(stream).toHaveLength(1);
    const dir = join(OPENAI_PACT_DIR, 'mutations');
    await mkdir(dir, { recursive: true });
    const verify = async (name: string, rewrite: (regex: string) => string): Promise<unknown> => {
      const file = join(dir, `${name}.json`);
      const interactions = stream.map((x) => ({
        ...x,
        response: {
          ...x.response,
          matchingRules: JSON.parse(
            JSON.stringify(x.response.matchingRules, (k, v: unknown) =>
              k === 'regex' && typeof v === 'string' && v.includes('DONE') ? rewrite(v) : v,
            ),
          ) as unknown,
        },
      }));
      await writeFile(file, JSON.stringify({ ...pact, interactions }));
      return verifyProvider(file, h.url, { logLevel: 'error' }).then(
        () => undefined,
        (e: unknown) => e,
      );
    };
    // Control: the file's own expression passes, so the failure below is the rewrite's alone.
    expect(await verify('as-written', (r) => r)).toBeUndefined();
    // A stream without the usage chunk it was asked for must not verify.
    const withoutUsage = (r: string): string => {
      const out = r.replace('"choices":\\[\\],"usage"', '"usage-less"');
      expect(out).not.toBe(r);
      return out;
    };
    expect(await verify('no-usage-chunk', withoutUsage)).toBeInstanceOf(Error);
  }, 60_000);
});
