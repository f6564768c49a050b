/**
 * The artifact registry through the public API (SPEC §9): content addressing over RFC 8785
 * canonical JSON, idempotency, lineage, tags, tenant isolation, limits; and durability of the
 * embedded store across a kill -9 of `llorch serve`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import { KEYS, TEST_KEYS, call, simPool, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    storage: { max_artifact_bytes: 2_000 },
    pools: [simPool('art', 'vllm')],
  });
});
afterAll(async () => {
  await h.close();
});

const put = (body: Record<string, unknown>, key: string = KEYS.alice) =>
  call(h.url, 'POST', '/v1/artifacts', { key, body });
type Ref = { id: string; kind: string; digest: string; created_ms: number; tags: string[] };

describe('artifact registry (ORCH-3097/3098)', () => {
  it('ids are content addresses: equal content (any key order) gives the same id; posting again is idempotent', async () => {
    const a = await put({
      kind: 'plan',
      content: { steps: ['x', 'y'], owner: 'agent', n: 1.0 },
      tags: ['v1'],
    });
    expect(a.status).toBe(201);
    const ra = a.json as Ref;
    expect(ra.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const b = await put({ kind: 'plan', content: { n: 1, owner: 'agent', steps: ['x', 'y'] }, tags: ['v2'] });
    expect(b.status).toBe(201);
    expect((b.json as Ref).id).toBe(ra.id);
    expect((b.json as Ref).created_ms).toBe(ra.created_ms);
    expect((b.json as Ref).tags).toEqual(['v1', 'v2']);
    const other = await put({ kind: 'summary', content: { n: 1, owner: 'agent', steps: ['x', 'y'] } });
    expect((other.json as Ref).id).not.toBe(ra.id);
    expect((other.json as Ref).digest).toBe(ra.digest); // same content, different kind
    const got = await call(h.url, 'GET', `/v1/artifacts/${ra.id}`, { key: KEYS.alice });
    expect(got.json).toMatchObject({
      id: ra.id,
      kind: 'plan',
      content: { steps: ['x', 'y'], owner: 'agent', n: 1 },
    });
  });

  it('lineage and tags: children of a parent, listing by tag, an unknown parent refused', async () => {
    const root = (await put({ kind: 'plan', content: 'root plan', tags: ['project-x'] })).json as Ref;
    const d1 = (await put({ kind: 'diff', content: { patch: 1 }, parent: root.id, tags: ['project-x'] }))
      .json as Ref;
    const d2 = (await put({ kind: 'trace', content: { spans: [] }, parent: root.id })).json as Ref;
    const kids = (
      await call(h.url, 'GET', `/v1/artifacts?parent=${encodeURIComponent(root.id)}`, { key: KEYS.alice })
    ).json as { artifacts: Ref[] };
    expect(kids.artifacts.map((x) => x.id).sort()).toEqual([d1.id, d2.id].sort());
    const tagged = (await call(h.url, 'GET', '/v1/artifacts?tag=project-x', { key: KEYS.alice })).json as {
      artifacts: Ref[];
    };
    expect(tagged.artifacts.map((x) => x.id).sort()).toEqual([root.id, d1.id].sort());
    expect((await call(h.url, 'GET', `/v1/artifacts/${d1.id}`, { key: KEYS.alice })).json).toMatchObject({
      parent: root.id,
    });
    const orphan = await put({ kind: 'diff', content: 1, parent: `sha256:${'0'.repeat(64)}` });
    expect(orphan.status).toBe(400);
  });

  it('tenants see only their own artifacts; limits answer 413; bad kinds 400', async () => {
    const mine = (await put({ kind: 'other', content: { secret: 'alice only' } })).json as Ref;
    expect((await call(h.url, 'GET', `/v1/artifacts/${mine.id}`, { key: KEYS.bob })).status).toBe(404);
    const list = (await call(h.url, 'GET', '/v1/artifacts', { key: KEYS.bob })).json as { artifacts: Ref[] };
    expect(list.artifacts.some((x) => x.id === mine.id)).toBe(false);
    const big = await put({ kind: 'other', content: 'x'.repeat(3_000) });
    expect(big.status).toBe(413);
    expect(big.json).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect((await put({ kind: 'poem', content: 1 })).status).toBe(400);
    expect((await call(h.url, 'POST', '/v1/artifacts', { body: { kind: 'plan', content: 1 } })).status).toBe(
      401,
    );
  });
});

describe('durability (SPEC §8)', () => {
  const run = promisify(execFile);
  const CLI = 'dist/src/cli/llorch.js';
  const KEY = 'durable-key-1';
  let serve: ChildProcess | undefined;
  const started: ChildProcess[] = [];
  /** kill -9 of the orchestrator alone: its engines end with it (their watchdogs see it die). */
  const kill9 = (child: ChildProcess | undefined): void => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
  };

  async function start(file: string): Promise<string> {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    serve = child;
    started.push(child);
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve not ready:\n${out}`)), 30_000);
      const onData = (b: Buffer) => {
        out += b.toString('utf8');
        const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1];
        if (url) {
          clearTimeout(timer);
          resolve(url);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
    });
  }
  afterAll(() => {
    for (const child of started) kill9(child);
  });

  it('artifacts stored through the CLI survive kill -9 of the orchestrator', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-'));
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      stringify({
        profile: 'dev',
        listen: { host: '127.0.0.1', port: 0 },
        data_dir: dir,
        // API-key records (hashed) live in the configuration: they hold across restarts too.
        auth: {
          keys: [{ id: 'ops', tenant: 'durable', sha256: sha256Hex(KEY), scopes: ['data', 'control'] }],
        },
        pools: [simPool('d', 'tgi')],
      }),
    );
    let url = await start(file);
    const { stdout } = await run(process.execPath, [
      CLI,
      'artifacts',
      'put',
      '--api-key',
      KEY,
      '--url',
      url,
      '--kind',
      'plan',
      '--content',
      '{"goal":"survive"}',
      '--tag',
      'keep',
    ]);
    const ref = JSON.parse(stdout) as Ref;
    kill9(serve);
    await new Promise((r) => serve?.once('exit', r));
    url = await start(file);
    const got = JSON.parse(
      (await run(process.execPath, [CLI, 'artifacts', 'get', ref.id, '--api-key', KEY, '--url', url])).stdout,
    ) as Record<string, unknown>;
    // Without the key the restarted orchestrator refuses: the keys were applied, not dropped.
    await expect(
      run(process.execPath, [CLI, 'artifacts', 'get', ref.id, '--url', url]),
    ).rejects.toMatchObject({ code: 1 });
    expect(got).toMatchObject({ id: ref.id, content: { goal: 'survive' }, tags: ['keep'] });
    const ls = JSON.parse(
      (await run(process.execPath, [CLI, 'artifacts', 'ls', '--tag', 'keep', '--api-key', KEY, '--url', url]))
        .stdout,
    ) as { artifacts: Ref[] };
    expect(ls.artifacts.map((x) => x.id)).toEqual([ref.id]);
  });

  it('catalog entries and their lifecycle survive kill -9 too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-cat-'));
    const model = join(dir, 'm.gguf');
    await writeFile(model, 'weights');
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      stringify({
        profile: 'dev',
        listen: { host: '127.0.0.1', port: 0 },
        data_dir: dir,
        catalog: { trust_policy: 'permissive' },
        pools: [simPool('d', 'tgi')],
      }),
    );
    let url = await start(file);
    await run(process.execPath, [CLI, 'catalog', 'add', 'm', '--source', model, '--url', url]);
    await run(process.execPath, [CLI, 'catalog', 'state', 'm', 'Active', '--url', url]);
    kill9(serve);
    await new Promise((r) => serve?.once('exit', r));
    url = await start(file);
    const shown = JSON.parse(
      (await run(process.execPath, [CLI, 'catalog', 'show', 'm', '--url', url])).stdout,
    ) as Record<string, unknown>;
    expect(shown).toMatchObject({ id: 'm', state: 'Active', verified: false });
  });

  it('the session budgets ledger survives kill -9: a session cannot spend its budget twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-budget-'));
    const file = join(dir, 'config.yaml');
    const pool = { ...simPool('b', 'tgi'), budgets: { session_tokens: 40 } };
    await writeFile(
      file,
      stringify({ profile: 'dev', listen: { host: '127.0.0.1', port: 0 }, data_dir: dir, pools: [pool] }),
    );
    const submit = (url: string) =>
      run(process.execPath, [
        CLI,
        'submit',
        '--url',
        url,
        '--engine',
        'tgi',
        '--model',
        'b',
        '--session',
        '6f1d2a3b-0c4e-4f5a-8b6c-7d8e9f0a1b2c',
        '--prompt',
        'hi',
        '--max-tokens',
        '20',
      ]);
    let url = await start(file);
    await submit(url); // ~3 prompt tokens + 20 generated: 23 of 40
    kill9(serve);
    await new Promise((r) => serve?.once('exit', r));
    url = await start(file);
    const second = await submit(url).catch((e: unknown) => e as { code: number; stderr: string });
    expect(second).toMatchObject({ code: 1 });
    expect((second as { stderr: string }).stderr).toMatch(/400 INVALID_PARAMS.*session budget/);
  });
});
