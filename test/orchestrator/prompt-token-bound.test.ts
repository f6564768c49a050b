/**
 * Admission without a tokenizer round trip (`promptTokenBound`): on a vocabulary known to make
 * at most one token per UTF-8 byte, a prompt that fits by its byte count is admitted uncounted;
 * one near the limit, or whose exact count something depends on, is still counted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OrchError } from '../../src/errors/orch-error.js';
import {
  SPECIAL_TOKENS_BOUND,
  lookUpVocabulary,
  vocabTypeIsByteBounded,
} from '../../src/orchestrator/prompt-token-bound.js';
import { closeCores, core, input, tenant } from '../support/core.js';
import { StepAdapter } from '../support/fake-pool.js';

afterEach(closeCores);

const A = tenant('alice');

/** A llama-server stand-in whose `GET /v1/models` states `vocab_type`; the fake counts 1 token a char. */
let vocabType: unknown = 2;
let server: Server;
let baseUrl = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/v1/models') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', data: [{ id: 'm', meta: { vocab_type: vocabType } }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** A fake replica at the stand-in's address (the fake's own address is not HTTP). */
function llamaServer(): StepAdapter {
  const adapter = new StepAdapter();
  Object.defineProperty(adapter, 'baseUrl', { value: baseUrl });
  return adapter;
}

async function refusal(p: Promise<unknown>): Promise<OrchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof OrchError)) throw new Error(`expected an OrchError, got ${String(err)}`);
  return err;
}

/** A core over one llama.cpp replica whose vocabulary lookup has completed. */
async function learned(extra: Parameters<typeof core>[0] = {}) {
  const adapter = llamaServer();
  const c = core({ adapters: [adapter], ...extra });
  await lookUpVocabulary(c.pool);
  return { ...c, adapter };
}

describe("llama.cpp's vocabulary type", () => {
  it('SPM (1) and BPE (2) are byte-bounded; WordPiece, Unigram, none and a boolean are not', () => {
    const body = (v: unknown) => ({ data: [{ meta: { vocab_type: v } }] });
    expect(vocabTypeIsByteBounded(body(1))).toBe(true);
    expect(vocabTypeIsByteBounded(body(2))).toBe(true);
    for (const v of [0, 3, 4, 5, true, false, '2', undefined])
      expect(vocabTypeIsByteBounded(body(v))).toBe(false);
    expect(vocabTypeIsByteBounded({ data: [] })).toBe(false);
    expect(vocabTypeIsByteBounded(null)).toBe(false);
  });
});

describe('admission by the byte bound', () => {
  it('counts until the vocabulary is known, then admits a prompt that fits by its bytes uncounted', async () => {
    vocabType = 2;
    const adapter = llamaServer();
    const { orch, pool } = core({ adapters: [adapter] });
    await orch.submit(A, input(), 'c');
    expect(adapter.tokenizations).toBe(1);
    expect(await lookUpVocabulary(pool)).toBe(true);
    const id = input();
    await orch.submit(A, id, 'c');
    expect(adapter.tokenizations).toBe(1);
    // The bound is what the task carries until the engine reports its own count.
    expect(orch.task(A, id.taskId).spec.promptTokens).toBe(2 + SPECIAL_TOKENS_BOUND);
    adapter.release(100);
  });

  it('a prompt near the limit is counted exactly: admitted when it fits, refused when not', async () => {
    vocabType = 1;
    const { orch, adapter } = await learned();
    const maxTokens = 8;
    // Fits exactly (1 token a char), though not by the bound.
    const fits = 'x'.repeat(512 - maxTokens);
    await orch.submit(A, input({ prompt: fits, maxTokens }), 'c');
    expect(adapter.tokenizations).toBe(1);
    const over = 'x'.repeat(512 - maxTokens + 1);
    expect((await refusal(orch.submit(A, input({ prompt: over, maxTokens }), 'c'))).message).toMatch(
      /^max_tokens: prompt \(505 tokens\)/,
    );
    expect(adapter.tokenizations).toBe(2);
    adapter.release(100);
  });

  it('multi-byte text is bounded by its UTF-8 bytes, not its characters', async () => {
    vocabType = 2;
    const { orch, adapter } = await learned();
    // 100 characters, 300 bytes: by characters it would fit the bound; by bytes it does not.
    await orch.submit(A, input({ prompt: '€'.repeat(100), maxTokens: 512 - 300 }), 'c');
    expect(adapter.tokenizations).toBe(1);
    adapter.release(1_000);
  });

  it('Unigram and WordPiece vocabularies are always counted', async () => {
    for (const v of [3, 4]) {
      vocabType = v;
      const { orch, adapter } = await learned();
      await orch.submit(A, input(), 'c');
      await orch.submit(A, input(), 'c');
      expect(adapter.tokenizations).toBe(2);
      adapter.release(100);
      await closeCores();
    }
  });

  it('chat turns, session budgets and max_tokens sized from ctx are counted exactly', async () => {
    vocabType = 2;
    const chat = await learned();
    await chat.orch.submit(A, input({ prompt: undefined, messages: [{ role: 'user', content: 'hi' }] }), 'c');
    expect(chat.adapter.tokenizations).toBe(1);
    await chat.orch.submit(A, input({ maxTokensFromCtx: true }), 'c');
    expect(chat.adapter.tokenizations).toBe(2);
    chat.adapter.release(1_000);
    await closeCores();
    const budgeted = await learned({ pool: { budgets: { session_tokens: 10_000 } } });
    await budgeted.orch.submit(A, input(), 'c');
    expect(budgeted.adapter.tokenizations).toBe(1);
    budgeted.adapter.release(100);
  });

  it('a deadline the bound would miss is decided on the exact count', async () => {
    vocabType = 2;
    const { orch, adapter, pool } = await learned();
    // 10 ms per prompt token, nothing else: 100 tokens take 1000 ms, the bound's 104 take 1040.
    pool.predictor.observe({
      replicaId: 'p-r0',
      prefillTokens: 100,
      prefillMs: 1_000,
      decodeTokens: 1,
      decodeMs: 0,
    });
    const prompt = 'x'.repeat(100);
    await orch.submit(A, input({ prompt, maxTokens: 1, deadlineMs: 1_020 }), 'c');
    expect(adapter.tokenizations).toBe(1);
    // With room to spare the bound decides.
    await orch.submit(A, input({ prompt, maxTokens: 1, deadlineMs: 60_000 }), 'c');
    expect(adapter.tokenizations).toBe(1);
    adapter.release(100);
  });
});
