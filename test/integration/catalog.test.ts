/**
 * The model catalog through the public API (SPEC §8): minisign-signed and unsigned files (keys
 * generated here, and one signature made by the minisign CLI itself), a tampered file, a
 * disallowed source, strict vs permissive, lifecycle transitions, and Deprecated at admission.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, signMinisign } from '../../src/catalog/minisign.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

const run = promisify(execFile);
let h: Harness;
let dir: string;
const key = generateKeyPair('test');
const stranger = generateKeyPair('stranger');

async function file(name: string, content: string, signer?: typeof key): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, content);
  if (signer) await writeFile(`${p}.minisig`, signMinisign(Buffer.from(content), signer, `file:${name}`));
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-catalog-'));
  await writeFile(join(dir, 'trusted.pub'), key.publicKeyText);
  const roots = [join(dir, 'trusted.pub')];
  if (existsSync('/usr/bin/minisign')) {
    // A key made by the minisign CLI is trusted too: the format is minisign's own.
    await run('minisign', ['-G', '-W', '-p', join(dir, 'cli.pub'), '-s', join(dir, 'cli.key')]);
    roots.push(join(dir, 'cli.pub'));
  }
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    catalog: { trust_policy: 'strict', trust_roots: roots, allowed_sources: ['path', 'file'] },
    pools: [simPool('served', 'tgi', { model: { id: 'served' } })],
  });
});
afterAll(async () => {
  await h.close();
});

const add = (body: Record<string, unknown>) =>
  call(h.url, 'POST', '/v1/catalog/models', { key: KEYS.ops, body });

describe('catalog ingest under the strict trust policy', () => {
  it('a file signed by a trusted key is accepted, with its real digest, as Draft', async () => {
    const p = await file('good.gguf', 'weights v1', key);
    const r = await add({
      id: 'good',
      source: p,
      tags: ['q4'],
      sbom: { bomFormat: 'CycloneDX', components: [] },
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({
      id: 'good',
      state: 'Draft',
      verified: true,
      trust_policy: 'strict',
      tags: ['q4'],
    });
    expect((r.json as { digest: string }).digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const v = await call(h.url, 'POST', '/v1/catalog/models/good/verify', { key: KEYS.ops });
    expect(v.json).toMatchObject({ id: 'good', result: 'verified', reason: 'signed' });
  });

  it.runIf(existsSync('/usr/bin/minisign'))('a signature made by the minisign CLI verifies', async () => {
    const p = await file('cli.gguf', 'weights by cli');
    await run('minisign', ['-S', '-W', '-s', join(dir, 'cli.key'), '-m', p]);
    expect((await add({ id: 'cli', source: `file://${p}` })).json).toMatchObject({ verified: true });
  });

  it('unsigned, signed by an unknown key, tampered, pinned to another digest, or from a disallowed source: refused', async () => {
    const unsigned = await file('unsigned.gguf', 'no signature');
    expect((await add({ id: 'u', source: unsigned })).json).toMatchObject({ code: 'UNTRUSTED_ARTIFACT' });
    const foreign = await file('foreign.gguf', 'other key', stranger);
    expect(((await add({ id: 'f', source: foreign })).json as { message: string }).message).toContain(
      'unknown_key',
    );
    const tampered = await file('tampered.gguf', 'original', key);
    await appendFile(tampered, ' + injected');
    expect(((await add({ id: 't', source: tampered })).json as { message: string }).message).toContain(
      'bad_signature',
    );
    const pinned = await add({
      id: 'p',
      source: await file('pinned.gguf', 'x', key),
      digest: `sha256:${'0'.repeat(64)}`,
    });
    expect(pinned.status).toBe(403);
    expect((pinned.json as { message: string }).message).toContain('not the pinned');
    const https = await add({ id: 'h', source: 'https://example.com/model.gguf' });
    expect(https.status).toBe(403);
    expect((await call(h.url, 'GET', '/v1/catalog/models/u', { key: KEYS.ops })).status).toBe(404);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(
      /catalog_verifications_total\{result="failed",reason="unsigned",engine="any"\} 1/,
    );
    expect(metrics).toMatch(
      /catalog_verifications_total\{result="verified",reason="signed",engine="any"\} [1-9]/,
    );
  });

  it('verify detects bytes changed on disk after ingest', async () => {
    const p = await file('later.gguf', 'fine at first', key);
    expect((await add({ id: 'later', source: p })).status).toBe(201);
    await appendFile(p, 'swapped');
    const v = await call(h.url, 'POST', '/v1/catalog/models/later/verify', { key: KEYS.ops });
    expect(v.json).toMatchObject({ result: 'failed', reason: 'digest_mismatch' });
    expect((await call(h.url, 'GET', '/v1/catalog/models/later', { key: KEYS.ops })).json).toMatchObject({
      verified: false,
    });
  });
});

describe('lifecycle (ORCH-3069..3074)', () => {
  it('moves only along allowed transitions, exports model_state, and Deprecated refuses new sessions (409)', async () => {
    const p = await file('served.gguf', 'served weights', key);
    expect((await add({ id: 'served', source: p })).status).toBe(201);
    const state = (s: string) =>
      call(h.url, 'POST', '/v1/catalog/models/served/state', { key: KEYS.ops, body: { state: s } });
    expect((await state('Retired')).status).toBe(200); // Draft → Retired is allowed
    expect((await state('Active')).json).toMatchObject({ code: 'CONFLICT' }); // nothing leaves Retired
    const q = await file('q.gguf', 'q', key);
    expect((await add({ id: 'q', source: q })).status).toBe(201);
    const ok = await call(h.url, 'POST', '/v1/catalog/models/q/state', {
      key: KEYS.ops,
      body: { state: 'Active' },
    });
    expect(ok.json).toMatchObject({ state: 'Active' });
    // The entry carries its lifecycle, oldest first: creation, then each change.
    const entry = await call(h.url, 'GET', '/v1/catalog/models/served', { key: KEYS.ops });
    expect((entry.json as { history: unknown[] }).history).toEqual([
      { at_ms: expect.any(Number), to: 'Draft', reason: expect.any(String) },
      { at_ms: expect.any(Number), from: 'Draft', to: 'Retired' },
    ]);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/model_state\{model_id="q",state="Active"\} 1/);
    expect(metrics).toMatch(/model_state\{model_id="q",state="Draft"\} 0/);
    // The pool 'served' serves catalog id 'served', now Retired: it takes no work.
    const refused = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('served', { engine: 'tgi' }),
    });
    expect(refused.status).toBe(503);
  });

  it('Deprecated: existing sessions continue, new sessions get MODEL_DEPRECATED', async () => {
    const h2 = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: { trust_policy: 'permissive', override_tenants: ['bob'] },
      pools: [simPool('legacy', 'vllm', { model: { id: 'legacy' } })],
    });
    try {
      const p = await file('legacy.gguf', 'legacy weights');
      const created = await call(h2.url, 'POST', '/v1/catalog/models', {
        key: KEYS.ops,
        body: { id: 'legacy', source: p },
      });
      expect(created.json).toMatchObject({ verified: false, trust_policy: 'permissive' }); // permissive: logged, kept
      for (const s of ['Active', 'Deprecated'])
        await call(h2.url, 'POST', '/v1/catalog/models/legacy/state', { key: KEYS.ops, body: { state: s } });
      const fresh = await call(h2.url, 'POST', '/v1/tasks', {
        key: KEYS.alice,
        body: task('legacy', { engine: 'vllm' }),
      });
      expect(fresh.status).toBe(409);
      expect(fresh.json).toMatchObject({ code: 'MODEL_DEPRECATED' });
      // `override` works only for tenants the policy permits.
      const denied = await call(h2.url, 'POST', '/v1/tasks', {
        key: KEYS.alice,
        body: task('legacy', { engine: 'vllm', override: true }),
      });
      expect(denied.status).toBe(409);
      const allowed = await call(h2.url, 'POST', '/v1/tasks', {
        key: KEYS.bob,
        body: task('legacy', { engine: 'vllm', override: true, max_tokens: 2 }),
      });
      expect(allowed.status).toBe(202);
      // A session that existed before deprecation keeps working.
      await call(h2.url, 'POST', '/v1/catalog/models/legacy/state', {
        key: KEYS.ops,
        body: { state: 'Active' },
      });
      const first = task('legacy', { engine: 'vllm', max_tokens: 2 });
      await call(h2.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: first });
      await readStream(h2.url, first.task_id, { key: KEYS.alice });
      await call(h2.url, 'POST', '/v1/catalog/models/legacy/state', {
        key: KEYS.ops,
        body: { state: 'Deprecated' },
      });
      const again = await call(h2.url, 'POST', '/v1/tasks', {
        key: KEYS.alice,
        body: task('legacy', { engine: 'vllm', max_tokens: 2, session_id: first.session_id }),
      });
      expect(again.status).toBe(202);
    } finally {
      await h2.close();
    }
  });
});

describe('pools serve catalog models, verified before load', () => {
  it('a pool naming a catalog id serves its file; a tampered file never becomes Ready under strict', async () => {
    const { tinyModelPath, tinyPool } = await import('../support/harness.js');
    const { copyFile } = await import('node:fs/promises');
    const good = join(dir, 'cat-tiny.gguf');
    await copyFile(await tinyModelPath(), good);
    await writeFile(
      `${good}.minisig`,
      signMinisign(await (await import('node:fs/promises')).readFile(good), key, 'tiny'),
    );
    const bad = join(dir, 'cat-bad.gguf');
    await copyFile(good, bad);
    await writeFile(`${bad}.minisig`, signMinisign(Buffer.from('something else'), key, 'bad'));
    const trust = join(dir, 'trusted.pub');
    const h3 = await startHarness(
      {
        auth: { keys: TEST_KEYS },
        catalog: { trust_policy: 'permissive', trust_roots: [trust] },
        pools: [
          { ...tinyPool('cat-tiny', good), model: { id: 'cat-tiny' } },
          { ...tinyPool('cat-bad', bad), model: { id: 'cat-bad' } },
        ],
      },
      { waitReady: false },
    ).catch((e: unknown) => e);
    // Without catalog entries the pools cannot start: they name no path.
    expect(String(h3)).toMatch(/names no model\.path and the catalog has no model 'cat-tiny'/);

    const { validateConfig } = await import('../../src/config/load-config.js');
    const { startOrchestrator } = await import('../../src/main.js');
    const { createLogger } = await import('../../src/util/logger.js');
    const { config } = validateConfig({
      profile: 'dev',
      listen: { host: '127.0.0.1', port: 0 },
      data_dir: await mkdtemp(join(tmpdir(), 'llorch-catpool-')),
      catalog: { trust_policy: 'strict', trust_roots: [trust] },
      pools: [
        { ...tinyPool('cat-tiny', good), model: { id: 'cat-tiny' } },
        { ...tinyPool('cat-bad', bad), model: { id: 'cat-bad' } },
        // By tag: resolved once to one entry, whose digest the pool pins.
        { ...tinyPool('by-tag', good), model: { id: 'tag:cat-line' } },
      ],
    });
    // cat-bad is ingested while its signature still matched, then its bytes change on disk.
    const badBytes = await (await import('node:fs/promises')).readFile(bad);
    await writeFile(`${bad}.minisig`, signMinisign(badBytes, key, 'bad'));
    const running = await startOrchestrator(config, {
      logger: createLogger({ level: 'silent' }),
      processMetrics: false,
      bootstrapCatalog: [
        { id: 'cat-tiny', source: good, tags: ['cat-line'] },
        { id: 'cat-bad', source: bad },
      ],
    }).catch(async (e: unknown) => {
      throw e;
    });
    try {
      await running.ready;
      const pools = running.orchestrator.pools;
      expect(pools.find((p) => p.id === 'cat-tiny')?.availability()).toBe('ready');
      expect(pools.find((p) => p.id === 'cat-tiny')?.modelDigest()).toMatch(/^sha256:/);
      expect(pools.find((p) => p.id === 'by-tag')?.availability()).toBe('ready');
      expect(pools.find((p) => p.id === 'by-tag')?.modelDigest()).toBe(
        pools.find((p) => p.id === 'cat-tiny')?.modelDigest(),
      );
    } finally {
      await running.close(0);
    }
    await appendFile(bad, 'tampered after ingest');
    const again = await startOrchestrator(config, {
      logger: createLogger({ level: 'silent' }),
      processMetrics: false,
    });
    try {
      await again.ready;
      const badPool = again.orchestrator.pools.find((p) => p.id === 'cat-bad');
      expect(badPool?.availability()).toBe('unavailable');
      const cause = badPool?.supervisor.replicas()[0]?.state;
      expect(cause).toMatchObject({
        kind: 'unready',
        cause: expect.stringMatching(/failed verification before load \(digest_mismatch\)/),
      });
      expect(again.orchestrator.pools.find((p) => p.id === 'cat-tiny')?.availability()).toBe('ready');
    } finally {
      await again.close(0);
    }
  });
});

describe('references and lifecycle effects on pools', () => {
  it('tags resolve deterministically to one immutable digest; id@digest must match', async () => {
    const mk = async (id: string, content: string, state?: string) => {
      expect(
        (await add({ id, source: await file(`${id}.gguf`, content, key), tags: ['q4-line'] })).status,
      ).toBe(201);
      if (state)
        await call(h.url, 'POST', `/v1/catalog/models/${id}/state`, { key: KEYS.ops, body: { state } });
    };
    await mk('line-draft', 'd');
    await mk('line-old', 'o', 'Active');
    await new Promise((r) => setTimeout(r, 5));
    await mk('line-new', 'n', 'Active');
    const resolved = await Promise.all(
      [0, 1, 2].map(
        async () =>
          (await call(h.url, 'GET', '/v1/catalog/models/tag:q4-line', { key: KEYS.ops })).json as {
            id: string;
            digest: string;
          },
      ),
    );
    expect(new Set(resolved.map((r) => `${r.id} ${r.digest}`)).size).toBe(1);
    expect(resolved[0]?.id).toBe('line-new');
    const pinned = await call(h.url, 'GET', `/v1/catalog/models/line-new@${resolved[0]?.digest ?? ''}`, {
      key: KEYS.ops,
    });
    expect(pinned.status).toBe(200);
    expect(
      (await call(h.url, 'GET', `/v1/catalog/models/line-new@sha256:${'1'.repeat(64)}`, { key: KEYS.ops }))
        .status,
    ).toBe(404);
  });

  it('a Retired model unloads the pools serving it', async () => {
    // 'served' was retired above: its pool drained and its engines stopped.
    await until(async () => {
      const hl = (await call(h.url, 'GET', '/v1/pools/served/health', { key: KEYS.ops })).json as {
        replicas: { state: string }[];
        draining: boolean;
      };
      return hl.draining && hl.replicas.every((r) => r.state === 'stopped');
    }, 10_000);
  });

  it('Deprecated with a deadline drains the pools serving it when the deadline passes', async () => {
    const h4 = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: { trust_policy: 'permissive' },
      pools: [simPool('old', 'vllm', { model: { id: 'old' } })],
    });
    try {
      await call(h4.url, 'POST', '/v1/catalog/models', {
        key: KEYS.ops,
        body: { id: 'old', source: await file('old.gguf', 'old') },
      });
      await call(h4.url, 'POST', '/v1/catalog/models/old/state', {
        key: KEYS.ops,
        body: { state: 'Active' },
      });
      const r = await call(h4.url, 'POST', '/v1/catalog/models/old/state', {
        key: KEYS.ops,
        body: { state: 'Deprecated', deadline_ms: 200 },
      });
      expect(r.json).toMatchObject({ state: 'Deprecated' });
      const draining = async () =>
        ((await call(h4.url, 'GET', '/v1/pools/old/health', { key: KEYS.ops })).json as { draining: boolean })
          .draining;
      expect(await draining()).toBe(false);
      await until(draining, 90_000);
    } finally {
      await h4.close();
    }
  });
});

describe('canary (ORCH-3072)', () => {
  it('a configured share of new sessions goes to the canary; sessions stay put; promotion and rollback are one action each', async () => {
    const { tinyModelPath, tinyPool } = await import('../support/harness.js');
    const model = await tinyModelPath();
    const h5 = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: { trust_policy: 'permissive' },
      // Real llama-server pools: the split is observed on real engines.
      pools: [
        { ...tinyPool('v1', model), model: { id: 'v1', path: model } },
        { ...tinyPool('v2', model), model: { id: 'v2', path: model } },
      ],
    });
    try {
      const state = (id: string, body: Record<string, unknown>) =>
        call(h5.url, 'POST', `/v1/catalog/models/${id}/state`, { key: KEYS.ops, body });
      for (const id of ['v1', 'v2'])
        await call(h5.url, 'POST', '/v1/catalog/models', {
          key: KEYS.ops,
          body: { id, source: await file(`${id}.gguf`, id) },
        });
      await state('v1', { state: 'Active' });
      await state('v2', { state: 'Active' });
      const canary = await state('v2', { state: 'Canary', canary_of: 'v1', percent: 30 });
      expect(canary.json).toMatchObject({ state: 'Canary', canary_of: 'v1', canary_percent: 30 });
      // Fixed session ids (UUID-shaped, new ones on every call): the canary share of the 200 below
      // is the same every run, not a draw that lands on a bound once in a while.
      let sessions = 0;
      const fixedSession = () => `00000000-0000-4000-8000-${String(sessions++).padStart(12, '0')}`;
      const served = async (n: number, sessionId?: string) => {
        const out: string[] = [];
        for (let i = 0; i < n; i++) {
          const t = task('v1', {
            engine: 'llamacpp',
            max_tokens: 1,
            session_id: sessionId ?? fixedSession(),
          });
          expect((await call(h5.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
          const end = (await readStream(h5.url, t.task_id, { key: KEYS.alice })).events.at(-1);
          out.push(String(end?.data['replica_id']).split('-r')[0] ?? '');
        }
        return out;
      };
      const split = await served(200);
      const share = split.filter((p) => p === 'v2').length / split.length;
      expect(share).toBeGreaterThan(0.2);
      expect(share).toBeLessThan(0.4);
      // A session that started on v1 stays on v1 whatever the routing of new sessions.
      const sticky = crypto.randomUUID();
      const first = await served(1, sticky);
      expect(await served(5, sticky)).toEqual(Array.from({ length: 5 }, () => first[0]));
      // Promotion: one action; every new session goes to v2 and v1 is Deprecated.
      await state('v2', { state: 'Active' });
      expect(new Set(await served(20))).toEqual(new Set(['v2']));
      expect((await call(h5.url, 'GET', '/v1/catalog/models/v1', { key: KEYS.ops })).json).toMatchObject({
        state: 'Deprecated',
      });
    } finally {
      await h5.close();
    }
  });

  it('rollback: a canary set to Deprecated takes no new sessions', async () => {
    const h6 = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: { trust_policy: 'permissive' },
      pools: [simPool('w1', 'tgi', { model: { id: 'w1' } }), simPool('w2', 'tgi', { model: { id: 'w2' } })],
    });
    try {
      const state = (id: string, body: Record<string, unknown>) =>
        call(h6.url, 'POST', `/v1/catalog/models/${id}/state`, { key: KEYS.ops, body });
      for (const id of ['w1', 'w2'])
        await call(h6.url, 'POST', '/v1/catalog/models', {
          key: KEYS.ops,
          body: { id, source: await file(`${id}.gguf`, id) },
        });
      await state('w1', { state: 'Active' });
      await state('w2', { state: 'Active' });
      await state('w2', { state: 'Canary', canary_of: 'w1', percent: 100 });
      await state('w2', { state: 'Deprecated' });
      for (let i = 0; i < 10; i++) {
        const t = task('w1', { engine: 'tgi', max_tokens: 1 });
        expect((await call(h6.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
        const end = (await readStream(h6.url, t.task_id, { key: KEYS.alice })).events.at(-1);
        expect(end?.data['replica_id']).toBe('w1-r0');
      }
    } finally {
      await h6.close();
    }
  });
});
