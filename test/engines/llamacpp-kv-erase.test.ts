/**
 * Erasing a session's KV on llama.cpp (SPEC §17 "§2.4 sessions"): a completion names the slot
 * that keeps its KV, and `POST /slots/{id}?action=erase` empties that slot. The same cases run
 * against the real llama-server and against the simulator's llama.cpp dialect, so the simulator
 * answers as the engine does.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, GenerateRequest } from '../../src/engines/adapter.js';
import { validateConfig } from '../../src/config/load-config.js';
import { mapHttpError } from '../../src/engines/llamacpp/map-error.js';
import type { SlotInfo } from '../../src/engines/llamacpp/wire-types.js';
import { llamaServerArgs } from '../../src/pool/engine-launcher.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { startEngine, type EngineUnderTest } from '../support/engine-under-test.js';
import { simPool, tinyModelPath, tinyPool, until } from '../support/harness.js';

const SLOTS = 2;

const request = (o: Partial<GenerateRequest> = {}): GenerateRequest => ({
  prompt: 'Once upon a time',
  maxTokens: 8,
  seed: 7,
  determinism: 'strict',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
  ignoreEos: true,
  ...o,
});

type Done = Extract<EngineEvent, { kind: 'done' }>;

async function complete(e: EngineUnderTest, req: GenerateRequest): Promise<Done> {
  let done: Done | undefined;
  for await (const ev of e.adapter.generate(req, AbortSignal.timeout(30_000)))
    if (ev.kind === 'done') done = ev;
  if (!done) throw new Error('no done event');
  return done;
}

async function slots(e: EngineUnderTest): Promise<SlotInfo[]> {
  const res = await fetch(`${e.baseUrl}/slots`);
  expect(res.status).toBe(200);
  return (await res.json()) as SlotInfo[];
}

async function slot(e: EngineUnderTest, id: number): Promise<SlotInfo> {
  const s = (await slots(e)).find((x) => x.id === id);
  if (!s) throw new Error(`no slot ${id}`);
  return s;
}

async function post(e: EngineUnderTest, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${e.baseUrl}${path}`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

/**
 * KV a slot holds after a request: its whole prompt and every generated token but the last,
 * which is sampled and never decoded.
 */
async function held(e: EngineUnderTest, req: GenerateRequest, d: Done): Promise<number> {
  return (await e.adapter.countTokens(req.prompt, AbortSignal.timeout(5_000))) + d.tokensOut - 1;
}

function erase(e: EngineUnderTest, id: number): Promise<void> {
  if (!e.adapter.eraseKv) throw new Error(`${e.engine} adapter cannot erase KV`);
  return e.adapter.eraseKv(id, AbortSignal.timeout(5_000));
}

async function refusal(p: Promise<unknown>): Promise<OrchError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OrchError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

async function ready(e: EngineUnderTest): Promise<void> {
  await until(async () => (await e.adapter.probe(AbortSignal.timeout(2_000))).ready, 60_000);
  // The adapter learns the slot count here, as the supervisor's start-up makes it do.
  expect((await e.adapter.properties(AbortSignal.timeout(5_000))).slotsTotal).toBe(SLOTS);
}

/** The cases every llama.cpp-speaking engine must pass; `get` yields a fresh, ready engine. */
function eraseCases(get: () => EngineUnderTest): void {
  it('a completion names its slot, which then holds its KV; erasing empties the slot', async () => {
    const e = get();
    const req = request();
    const done = await complete(e, req);
    // A fresh llama-server breaks its least-recently-used tie towards the last slot.
    expect(done.slotId).toBe(SLOTS - 1);
    const id = done.slotId ?? -1;
    const n = await held(e, req, done);
    expect(n).toBeGreaterThan(0);
    expect(await slot(e, id)).toMatchObject({ is_processing: false, n_prompt_tokens: n });

    await erase(e, id);
    expect((await slot(e, id)).n_prompt_tokens).toBe(0);
  });

  it('a session turn returns to the slot holding its prefix; the erase answer counts what it freed', async () => {
    const e = get();
    const first = await complete(e, request({ prompt: 'The quick brown fox' }));
    const turn = request({ prompt: 'The quick brown fox jumps over the lazy dog', maxTokens: 4 });
    const next = await complete(e, turn);
    expect(next.slotId).toBe(first.slotId);
    const id = next.slotId ?? -1;
    expect(await post(e, `/slots/${id}?action=erase`)).toEqual({
      status: 200,
      body: { id_slot: id, n_erased: await held(e, turn, next) },
    });
    expect((await slot(e, id)).n_prompt_tokens).toBe(0);
    // Erasing an empty slot is not an error.
    expect(await post(e, `/slots/${id}?action=erase`)).toEqual({
      status: 200,
      body: { id_slot: id, n_erased: 0 },
    });
  });

  it('erasing a busy slot waits until its request has ended, then erases all of it', async () => {
    const e = get();
    const long = request({ prompt: 'A long story', maxTokens: 1_500 });
    const running = complete(e, long);
    let busy: SlotInfo | undefined;
    await until(async () => {
      busy = (await slots(e)).find((s) => s.is_processing);
      return busy !== undefined;
    }, 10_000);
    const id = busy?.id ?? -1;
    const erased = post(e, `/slots/${id}?action=erase`);
    const done = await running;
    expect(done.slotId).toBe(id);
    // Had the erase run at once, the request's later tokens would have refilled the slot.
    expect(await erased).toEqual({
      status: 200,
      body: { id_slot: id, n_erased: await held(e, long, done) },
    });
    expect((await slot(e, id)).n_prompt_tokens).toBe(0);
  });

  it('refuses ids that are not integers as llama-server does, and wraps every integer onto a slot', async () => {
    const e = get();
    const invalid = (message: string) => ({
      status: 400,
      body: { error: { code: 400, message, type: 'invalid_request_error' } },
    });
    expect(await post(e, '/slots/abc?action=erase')).toEqual(invalid('Invalid slot ID'));
    expect(await post(e, '/slots/99999999999?action=erase')).toEqual(invalid('Invalid slot ID'));
    expect(await post(e, '/slots/0?action=forget')).toEqual(invalid('Invalid action'));
    expect(await post(e, '/slots/0')).toEqual(invalid('Invalid action'));
    // The id is taken modulo the slot count, as an unsigned 64-bit number, and echoed as sent:
    // with two slots, id + 2 and id - 2 both name slot id.
    for (const offset of [SLOTS, -SLOTS]) {
      const req = request({ prompt: `wrap around ${offset}` });
      const done = await complete(e, req);
      const id = done.slotId ?? -1;
      expect(await post(e, `/slots/${id + offset}?action=erase`)).toEqual({
        status: 200,
        body: { id_slot: id + offset, n_erased: await held(e, req, done) },
      });
      expect((await slot(e, id)).n_prompt_tokens).toBe(0);
    }

    // The adapter refuses such ids itself rather than have the engine erase another slot.
    for (const bad of [-1, SLOTS, 1.5])
      expect(await refusal(erase(e, bad))).toMatchObject({ code: 'INVALID_PARAMS', engine: 'llamacpp' });
  });
}

/** A llama-server of the tiny model with SLOTS slots (the launcher enables slot actions). */
async function startLlama(
  id: string,
  extraArgs: readonly string[] = [],
): Promise<{ e: EngineUnderTest; stop: () => Promise<void> }> {
  const base = tinyPool(id, await tinyModelPath());
  const e = await startEngine({
    ...base,
    launch: { ...base.launch, parallel: SLOTS, extra_args: [...extraArgs] },
  });
  const stop = () => e.stop();
  try {
    await ready(e);
  } catch (err) {
    await stop();
    throw err;
  }
  return { e, stop };
}

describe('KV erase: real llama-server', () => {
  let llama: Awaited<ReturnType<typeof startLlama>>;
  beforeAll(async () => {
    llama = await startLlama('kv-erase');
  }, 120_000);
  afterAll(() => llama.stop());

  eraseCases(() => llama.e);
});

describe("KV erase: the simulator's llama.cpp dialect", () => {
  let e: EngineUnderTest;
  beforeAll(async () => {
    const base = simPool('kv-erase-sim', 'llamacpp');
    e = await startEngine({ ...base, launch: { ...base.launch, parallel: SLOTS } });
    await ready(e);
  }, 60_000);
  afterAll(async () => {
    await e.stop();
  });

  eraseCases(() => e);
});

describe('KV erase: slot actions are enabled at launch', () => {
  it('every llama-server gets an existing --slot-save-path', () => {
    const { config } = validateConfig({
      profile: 'dev',
      pools: [{ id: 'p', engine: 'llamacpp', model: { id: 'm', path: '/m.gguf' }, ctx: 512, devices: 'cpu' }],
    });
    const pool = config.pools[0];
    if (!pool) throw new Error('no pool');
    const args = llamaServerArgs(pool, 8080);
    const dir = args[args.indexOf('--slot-save-path') + 1];
    expect(dir).toBeDefined();
    expect(existsSync(dir ?? '')).toBe(true);
  });

  it('a server without it refuses with a 501 naming the flag (mapped to INTERNAL)', async () => {
    // Captured from the pinned llama-server started without the flag (fixtures README).
    const body = await readFile(new URL('../fixtures/llamacpp/slot-erase-501.json', import.meta.url), 'utf8');
    const err = mapHttpError(501, body);
    expect(err).toMatchObject({ code: 'INTERNAL', engine: 'llamacpp' });
    expect(err.message).toContain('--slot-save-path');
  });
});

/*
 * llama-server's host-memory prompt cache (`--cache-ram`, on by default) copies an idle slot's
 * KV when another request starts, and a slot erase does not reach that copy: the erased prompt
 * comes back on its next request. Only `--cache-ram 0` makes the erase complete.
 */
describe.each([
  { args: [], restored: true },
  { args: ['--cache-ram', '0'], restored: false },
])('KV erase: llama-server prompt cache, extra args $args', ({ args, restored }) => {
  let llama: Awaited<ReturnType<typeof startLlama>>;
  beforeAll(async () => {
    llama = await startLlama('kv-erase-ram', args);
  }, 120_000);
  afterAll(() => llama.stop());

  it(`an erased prompt ${restored ? 'comes back from host memory' : 'is gone'}`, async () => {
    const e = llama.e;
    const a = request({ prompt: 'Once upon a time there was a small dragon who lived in a cave' });
    const first = await complete(e, a);
    expect(first.slotId).toBe(SLOTS - 1);
    // Starting another request on the other slot is what copies the idle slot to host memory.
    expect((await complete(e, request({ prompt: 'Something else entirely, about indexes' }))).slotId).toBe(0);
    await erase(e, SLOTS - 1);
    expect((await slot(e, SLOTS - 1)).n_prompt_tokens).toBe(0);

    const again = await complete(e, a);
    expect(again.slotId).toBe(SLOTS - 1);
    const promptTokens = await e.adapter.countTokens(a.prompt, AbortSignal.timeout(5_000));
    // `tokensIn` is the whole prompt; `tokensInUncached` only the tokens the engine had to evaluate.
    expect(again.tokensIn).toBe(promptTokens);
    if (restored) expect(again.tokensInUncached).toBeLessThan(promptTokens);
    else expect(again.tokensInUncached).toBe(promptTokens);
  });
});
