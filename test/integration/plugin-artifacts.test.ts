/**
 * Plugins loaded by digest from the artifact registry (SPEC §10, §9): published with
 * `llorch plugins publish` through the public API, loaded at start under the strict trust policy
 * (the signature travels in the artifact), moved to another artifact by a reload.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, signMinisign } from '../../src/catalog/minisign.js';
import { publishPlugin } from '../../src/cli/plugins.js';
import { call, KEYS, simPool, startHarness, task, TEST_KEYS, type Harness } from '../support/harness.js';
import { compileWat, wat } from '../plugins/wat-fixtures.js';

const keys = generateKeyPair('plugins');
let dir: string;
let dataDir: string;
/** Artifact ids (tenant alice) by what they hold. */
const ids = { v1: '', v2: '', unsigned: '', tampered: '', notPlugin: '' };

/** Writes a module for plugin `dig` at `version` (and its signature unless `signed` is false). */
async function module(name: string, version: string, signed = true): Promise<string> {
  const path = join(dir, `${name}.wasm`);
  const bytes = await compileWat(wat({ decision: '{"decision":"adjust","weight":1.5}' }), {
    id: 'dig',
    version,
  });
  await writeFile(path, bytes);
  if (signed) await writeFile(`${path}.minisig`, signMinisign(Buffer.from(bytes), keys, `file:${path}`));
  return path;
}

const strict = () => ({ trust_policy: 'strict' as const, trust_roots: [join(dir, 'trusted.pub')] });
const withArtifact = (id: string) => ({
  id: 'dig',
  artifact: { id, tenant: 'alice' },
  hooks: ['admission' as const],
  budget_ms: 500,
});
const start = (plugins: ReturnType<typeof withArtifact>[]) =>
  startHarness({
    auth: { keys: TEST_KEYS },
    pools: [simPool('p0', 'llamacpp')],
    data_dir: dataDir,
    catalog: strict(),
    plugins,
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-plugin-artifacts-'));
  dataDir = join(dir, 'data');
  await writeFile(join(dir, 'trusted.pub'), keys.publicKeyText);
  // An orchestrator without plugins takes the uploads; the next ones load from its store.
  const h0 = await start([]);
  try {
    const connection = { url: h0.url, 'api-key': KEYS.alice };
    // The operator's way: the CLI.
    // Asynchronously: the orchestrator answering it runs in this process.
    const cli = await promisify(execFile)(
      'npx',
      ['tsx', 'src/cli/llorch.ts', 'plugins', 'publish', await module('v1', '1.0.0'), '--url', h0.url],
      { encoding: 'utf8', env: { ...process.env, LLORCH_API_KEY: KEYS.alice } },
    );
    expect(cli.stderr).toBe('');
    ids.v1 = cli.stdout.trim();
    expect(ids.v1).toMatch(/^sha256:[0-9a-f]{64}$/);
    ids.v2 = await publishPlugin(await module('v2', '2.0.0'), connection);
    ids.unsigned = await publishPlugin(await module('unsigned', '3.0.0', false), connection);
    // A signature over other bytes: v2's signature next to a module of another version.
    const tampered = await module('tampered', '4.0.0', false);
    await writeFile(`${tampered}.minisig`, await readFile(join(dir, 'v2.wasm.minisig')));
    ids.tampered = await publishPlugin(tampered, connection);
    const plain = await call(h0.url, 'POST', '/v1/artifacts', {
      key: KEYS.alice,
      body: { kind: 'plan', content: { steps: ['not a plugin'] } },
    });
    ids.notPlugin = (plain.json as { id: string }).id;
    const stored = await call(h0.url, 'GET', `/v1/artifacts/${ids.v1}`, { key: KEYS.alice });
    expect(stored.json).toMatchObject({
      kind: 'other',
      tags: ['plugin', 'plugin:dig@1.0.0'],
      metadata: { plugin: 'dig', version: '1.0.0', signed: true },
    });
  } finally {
    await h0.close();
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a plugin loaded by digest from the artifact registry', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await start([withArtifact(ids.v1)]);
  });
  afterAll(async () => h?.close());

  const view = async () =>
    (
      (await call(h.url, 'GET', '/v1/plugins', { key: KEYS.ops })).json as {
        plugins: Record<string, unknown>[];
      }
    ).plugins[0]!;

  it('loads under strict with the signature from the artifact, decides, and says where it came from', async () => {
    expect(await view()).toMatchObject({ id: 'dig', version: '1.0.0', artifact: ids.v1, state: 'active' });
    const loaded = JSON.parse(h.logs.lines.find((l) => l.includes('"event":"plugin.loaded"'))!) as Record<
      string,
      unknown
    >;
    expect(loaded).toMatchObject({ artifact: ids.v1, artifact_tenant: 'alice', trust: 'signed' });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.bob, body: task('p0') })).status).toBe(202);
    expect(
      h.logs.lines.some((l) => l.includes('"event":"plugin.decision"') && l.includes('"weight":1.5')),
    ).toBe(true);
  });

  it('a reload moves it to another artifact; unsigned, missing and non-plugin artifacts are refused and the active one stays', async () => {
    const reload = (body: unknown) => call(h.url, 'POST', '/v1/plugins/dig/reload', { key: KEYS.ops, body });
    const moved = await reload({ artifact: ids.v2 });
    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({ version: '2.0.0', artifact: ids.v2 });

    const unsigned = await reload({ artifact: ids.unsigned });
    expect(unsigned.status).toBe(403);
    expect(unsigned.json).toMatchObject({ code: 'UNTRUSTED_ARTIFACT' });
    expect((unsigned.json as { message: string }).message).toMatch(
      /refused by the strict trust policy: missing signature \(no signature in the artifact's minisig field/,
    );
    const missing = await reload({ artifact: `sha256:${'0'.repeat(64)}` });
    expect(missing.status).toBe(409);
    expect((missing.json as { message: string }).message).toMatch(
      /cannot read artifact sha256:0{64} of tenant 'alice'/,
    );
    const plan = await reload({ artifact: ids.notPlugin });
    expect(plan.status).toBe(409);
    expect((plan.json as { message: string }).message).toMatch(/is not a plugin module/);
    expect((await reload({ artifact: 'sha256:xyz' })).status).toBe(400);
    expect(await view()).toMatchObject({ version: '2.0.0', artifact: ids.v2, state: 'active' });
  });
});

describe('load-time refusals of artifact plugins stop the start', () => {
  it('a signature over other bytes (bad signature)', async () => {
    await expect(start([withArtifact(ids.tampered)])).rejects.toThrow(
      /plugins\[0\] 'dig': refused by the strict trust policy: bad signature/,
    );
  });

  it('an artifact the tenant does not have', async () => {
    await expect(
      start([{ ...withArtifact(ids.v1), artifact: { id: ids.v1, tenant: 'bob' } }]),
    ).rejects.toThrow(/plugins\[0\] 'dig': cannot read artifact sha256:[0-9a-f]{64} of tenant 'bob'/);
  });

  it('both path and artifact, or neither', async () => {
    await expect(start([{ ...withArtifact(ids.v1), path: 'x.wasm' } as never])).rejects.toThrow(
      /plugins\[0\]: give exactly one of path and artifact/,
    );
  });
});
