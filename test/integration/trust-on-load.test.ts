/**
 * Verified loading on every path (SPEC §8, §17 §8): a `model.path` pool, a directory model with
 * one byte changed, a reload to a host path and a pool-managerd node loading an unsigned file are
 * each refused under `strict` — the pool unready with the cause, which is logged and counted with
 * the engine's label — and allowed with a warning under `permissive`. A task to a model that
 * failed verification gets 403 UNTRUSTED_ARTIFACT at admission. Simulated pools "load" their
 * model files; one llama.cpp pool runs the real llama-server.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashArtifact, manifestSidecar, signatureSidecar } from '../../src/catalog/artifact-verifier.js';
import { generateKeyPair, signPrehash } from '../../src/catalog/minisign.js';
import { manifestBytes } from '../../src/catalog/model-manifest.js';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig, RawPool } from '../../src/config/schema.js';
import { sha256Hex } from '../../src/http/auth.js';
import { startOrchestrator, type RunningOrchestrator } from '../../src/main.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { startPoolManagerd, type PoolManagerd } from '../../src/nodes/pool-managerd.js';
import { createLogger, type Logger } from '../../src/util/logger.js';
import {
  KEYS,
  TEST_CTX,
  TEST_KEYS,
  call,
  readStream,
  requireLlamaServer,
  simPool,
  task,
  tinyModelPath,
  tinyPool,
  until,
} from '../support/harness.js';

const key = generateKeyPair('release');
let dir: string;
let trustRoot: string;

/** Signs a file or directory model as `llorch catalog sign` does (`<path>.minisig`, and the manifest of a directory). */
async function sign(path: string): Promise<string> {
  const a = await hashArtifact(path);
  if (!a) throw new Error(`nothing at ${path}`);
  await writeFile(signatureSidecar(path), signPrehash(await a.message('ED'), key, `test:${path}`));
  if (a.manifest) await writeFile(manifestSidecar(path), manifestBytes(a.manifest));
  return a.digest;
}

async function repo(name: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'tokenizer'), { recursive: true });
  await writeFile(join(root, 'config.json'), '{"architectures":["LlamaForCausalLM"]}');
  await writeFile(join(root, 'model.safetensors'), Buffer.alloc(8192, 3));
  await writeFile(join(root, 'tokenizer', 'tokenizer.json'), '{"version":"1.0","model":{}}');
  return root;
}

/** Changes one byte of a file in place. */
async function flipByte(path: string, at: number): Promise<void> {
  const b = await readFile(path);
  b[at] = (b[at] ?? 0) ^ 0xff;
  await writeFile(path, b);
}

interface Running {
  readonly url: string;
  readonly orch: RunningOrchestrator;
  readonly logs: string[];
}

function capture(lines: string[]): Logger {
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return createLogger({ level: 'debug', destination });
}

async function start(
  policy: 'strict' | 'permissive',
  raw: Partial<RawConfig> & { pools: RawPool[] },
  bootstrap: { id: string; source: string }[],
): Promise<Running> {
  const { config } = validateConfig({
    profile: 'dev',
    listen: { host: '127.0.0.1', port: 0 },
    data_dir: await mkdtemp(join(tmpdir(), 'llorch-trust-')),
    auth: { keys: TEST_KEYS },
    catalog: { trust_policy: policy, trust_roots: [trustRoot] },
    ...raw,
  });
  const logs: string[] = [];
  const orch = await startOrchestrator(config, {
    logger: capture(logs),
    processMetrics: false,
    bootstrapCatalog: bootstrap,
  });
  await orch.ready;
  return { url: orch.url, orch, logs };
}

type Health = {
  ready: boolean;
  last_error?: string | null;
  model_digest?: string;
  replicas: { state: string; cause?: string }[];
  lifecycle?: { operation: string; state: string; cause?: string };
};
const health = async (r: Running, id: string) =>
  (await call(r.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as Health;
const metricsOf = async (r: Running) => (await fetch(`${r.url}/metrics`)).text();
const logged = (logs: string[], pred: (l: Record<string, unknown>) => boolean) =>
  logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter(pred);
const reload = (r: Running, pool: string, ref: string) =>
  call(r.url, 'POST', `/v1/pools/${pool}/reload`, {
    key: KEYS.ops,
    body: { new_model_ref: ref, deadline_ms: 5_000 },
  });
const finished = async (r: Running, pool: string) => {
  await until(async () => (await health(r, pool)).lifecycle?.state !== 'in_progress', 60_000);
  return (await health(r, pool)).lifecycle;
};
const ends = async (r: Running, body: { task_id: string }) => {
  const res = await call(r.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
  expect(res.status).toBe(202);
  return (await readStream(r.url, body.task_id, { key: KEYS.alice })).events.at(-1)?.event;
};

let signedFile: string;
let unsignedFile: string;
let otherFile: string;
let repoDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-trust-models-'));
  trustRoot = join(dir, 'release.pub');
  await writeFile(trustRoot, key.publicKeyText);
  signedFile = join(dir, 'signed.bin');
  await writeFile(signedFile, 'signed model bytes');
  await sign(signedFile);
  otherFile = join(dir, 'other.bin');
  await writeFile(otherFile, 'another signed model');
  await sign(otherFile);
  unsignedFile = join(dir, 'unsigned.bin');
  await writeFile(unsignedFile, 'nobody signed these bytes');
  repoDir = await repo('hf-repo');
  await sign(repoDir);
});

describe('strict: every load is verified', () => {
  let s: Running;
  let copyOfSigned: string;
  let llamaUnsigned: string;
  beforeAll(async () => {
    await requireLlamaServer();
    // The same bytes as a catalogued file, elsewhere and without a signature of its own.
    copyOfSigned = join(dir, 'copy-of-signed.bin');
    await copyFile(signedFile, copyOfSigned);
    const tiny = join(dir, 'tiny.gguf');
    await copyFile(await tinyModelPath(), tiny);
    await sign(tiny);
    llamaUnsigned = join(dir, 'tiny-unsigned.gguf');
    await copyFile(await tinyModelPath(), llamaUnsigned);
    await writeFile(llamaUnsigned, Buffer.from(' '), { flag: 'a' });
    s = await start(
      'strict',
      {
        pools: [
          simPool('plain', 'tgi', { model: { id: 'plain', path: unsignedFile } }),
          simPool('by-digest', 'vllm', { model: { id: 'by-digest', path: copyOfSigned } }),
          simPool('repo', 'vllm', { model: { id: 'repo', path: repoDir } }),
          simPool('swap', 'tgi', { model: { id: 'swap', path: signedFile } }),
          tinyPool('llama-signed', tiny),
          tinyPool('llama-unsigned', llamaUnsigned),
        ],
      },
      [
        { id: 'signed-file', source: signedFile },
        { id: 'other-file', source: otherFile },
        { id: 'hf-repo', source: repoDir },
        { id: 'tiny-signed', source: tiny },
      ],
    );
  }, 180_000);
  afterAll(async () => {
    await s?.orch.close(1_000);
  });

  it('a model.path pool with an unsigned file is refused: unready with the cause, logged, counted with its engine', async () => {
    const h = await health(s, 'plain');
    expect(h.ready).toBe(false);
    expect(h.replicas[0]?.cause).toMatch(
      /^catalog: .*unsigned\.bin failed verification before load \(uncatalogued: no signed catalog entry has digest sha256:[0-9a-f]{64}.*refused by the strict trust policy/,
    );
    const events = logged(s.logs, (l) => l['event'] === 'catalog.verification' && l['pool_id'] === 'plain');
    expect(events).toEqual([
      expect.objectContaining({ phase: 'load', result: 'failed', reason: 'uncatalogued', engine: 'tgi' }),
    ]);
    const m = await metricsOf(s);
    expect(m).toMatch(/catalog_verifications_total\{result="failed",reason="uncatalogued",engine="tgi"\} 1/);
    // A file whose bytes match a signed catalog entry loads, wherever it lies.
    expect((await health(s, 'by-digest')).ready).toBe(true);
    expect(m).toMatch(/catalog_verifications_total\{result="verified",reason="signed",engine="vllm"\} [1-9]/);
  });

  it('the real llama-server: an uncatalogued GGUF never starts; the catalogued one serves', async () => {
    const bad = await health(s, 'llama-unsigned');
    expect(bad.ready).toBe(false);
    expect(bad.replicas[0]?.cause).toMatch(
      /tiny-unsigned\.gguf failed verification before load \(uncatalogued/,
    );
    const m = await metricsOf(s);
    expect(m).toMatch(
      /catalog_verifications_total\{result="failed",reason="uncatalogued",engine="llamacpp"\} 1/,
    );
    expect(m).toMatch(/catalog_verifications_total\{result="verified",reason="signed",engine="llamacpp"\} 1/);
    expect(await ends(s, task('llama-signed', { max_tokens: 4 }))).toBe('end');
  });

  it('a task to a model that failed verification gets 403 UNTRUSTED_ARTIFACT at admission', async () => {
    for (const [model, engine] of [
      ['plain', 'tgi'],
      ['llama-unsigned', 'llamacpp'],
    ] as const) {
      const r = await call(s.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task(model, { engine }) });
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({
        code: 'UNTRUSTED_ARTIFACT',
        retriable: false,
        pool_id: model,
        message: expect.stringMatching(/strict trust policy refuses it \(catalog: .*uncatalogued/),
      });
    }
    expect(await ends(s, task('by-digest', { engine: 'vllm', max_tokens: 3 }))).toBe('end');
  });

  it('reload: a host path is refused at the control API (403, envelope); catalog ids and digests are resolved and verified', async () => {
    for (const ref of ['/etc/hostname', 'file:///etc/hostname', unsignedFile]) {
      const r = await reload(s, 'swap', ref);
      expect(r.status, ref).toBe(403);
      expect(r.json).toMatchObject({ code: 'UNTRUSTED_ARTIFACT', pool_id: 'swap', retriable: false });
      expect((r.json as { message: string }).message).toMatch(
        /is a host path; under the strict trust policy/,
      );
    }
    expect((await health(s, 'swap')).lifecycle).toBeUndefined();
    const unknown = await reload(s, 'swap', 'no-such-model');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'NOT_FOUND' });

    const byId = await reload(s, 'swap', 'other-file');
    expect(byId.status).toBe(202);
    expect(await finished(s, 'swap')).toMatchObject({ operation: 'reload', state: 'succeeded' });
    const other = (await hashArtifact(otherFile))?.digest;
    expect(s.orch.orchestrator.pools.find((p) => p.id === 'swap')?.config.model).toMatchObject({
      path: otherFile,
      digest: other,
    });
    expect(other).toMatch(/^sha256:/);
    expect((await health(s, 'swap')).model_digest).toBe(other);
    expect(await ends(s, task('swap', { engine: 'tgi', max_tokens: 3 }))).toBe('end');

    const signedDigest = (await hashArtifact(signedFile))?.digest ?? '';
    expect((await reload(s, 'swap', signedDigest)).status).toBe(202);
    expect(await finished(s, 'swap')).toMatchObject({ state: 'succeeded' });
    expect((await health(s, 'swap')).model_digest).toBe(signedDigest);
  });

  it('a directory model loads verified; with one byte changed it is refused before launch, naming the file, and its tasks get 403', async () => {
    expect((await health(s, 'repo')).ready).toBe(true);
    expect(await ends(s, task('repo', { engine: 'vllm', max_tokens: 3 }))).toBe('end');
    await flipByte(join(repoDir, 'tokenizer', 'tokenizer.json'), 3);
    const before = await metricsOf(s);
    const failedBefore = Number(
      /catalog_verifications_total\{result="failed",reason="digest_mismatch",engine="vllm"\} (\d+)/.exec(
        before,
      )?.[1] ?? 0,
    );
    expect((await reload(s, 'repo', 'hf-repo')).status).toBe(202);
    const lc = await finished(s, 'repo');
    expect(lc?.state).toBe('failed');
    expect(lc?.cause).toMatch(
      /failed verification before load \(digest_mismatch: tokenizer\/tokenizer\.json changed\)/,
    );
    const events = logged(
      s.logs,
      (l) => l['event'] === 'catalog.verification' && l['pool_id'] === 'repo' && l['result'] === 'failed',
    );
    expect(events[0]).toMatchObject({
      reason: 'digest_mismatch',
      detail: 'tokenizer/tokenizer.json changed',
    });
    const failedAfter = Number(
      /catalog_verifications_total\{result="failed",reason="digest_mismatch",engine="vllm"\} (\d+)/.exec(
        await metricsOf(s),
      )?.[1] ?? 0,
    );
    expect(failedAfter).toBe(failedBefore + 1);
    const r = await call(s.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('repo', { engine: 'vllm' }),
    });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'UNTRUSTED_ARTIFACT' });
  });
});

describe('permissive: the same loads go ahead, with a warning, counted as allowed_unverified', () => {
  let p: Running;
  let tampered: string;
  beforeAll(async () => {
    tampered = join(dir, 'hf-repo-tampered');
    const pristine = await repo('hf-repo-p');
    await sign(pristine);
    await cp(pristine, tampered, { recursive: true });
    await flipByte(join(tampered, 'model.safetensors'), 100);
    p = await start(
      'permissive',
      {
        pools: [
          simPool('plain', 'tgi', { model: { id: 'plain', path: unsignedFile } }),
          simPool('repo', 'vllm', { model: { id: 'hf-repo-p', path: tampered } }),
        ],
      },
      [{ id: 'hf-repo-p', source: pristine }],
    );
  }, 120_000);
  afterAll(async () => {
    await p?.orch.close(1_000);
  });

  it('an unsigned model.path file and a changed directory load; each is logged as a warning and counted', async () => {
    expect((await health(p, 'plain')).ready).toBe(true);
    expect((await health(p, 'repo')).ready).toBe(true);
    const warnings = logged(p.logs, (l) => l['event'] === 'catalog.permissive_load');
    expect(warnings.map((w) => [w['pool_id'], w['reason']]).sort()).toEqual([
      ['plain', 'uncatalogued'],
      ['repo', 'digest_mismatch'],
    ]);
    expect(warnings.every((w) => w['level'] === 40)).toBe(true);
    const m = await metricsOf(p);
    expect(m).toMatch(
      /catalog_verifications_total\{result="allowed_unverified",reason="uncatalogued",engine="tgi"\} 1/,
    );
    expect(m).toMatch(
      /catalog_verifications_total\{result="allowed_unverified",reason="digest_mismatch",engine="vllm"\} 1/,
    );
    expect(await ends(p, task('plain', { engine: 'tgi', max_tokens: 3 }))).toBe('end');
    expect(await ends(p, task('hf-repo-p', { engine: 'vllm', max_tokens: 3 }))).toBe('end');
  });

  it('a reload to a host path is allowed, with a warning', async () => {
    const r = await reload(p, 'plain', otherFile);
    expect(r.status).toBe(202);
    expect(await finished(p, 'plain')).toMatchObject({ state: 'succeeded' });
    expect(logged(p.logs, (l) => l['event'] === 'catalog.untrusted_reload')).toEqual([
      expect.objectContaining({ pool_id: 'plain', path: otherFile, level: 40 }),
    ]);
    // Signed, but not catalogued in this orchestrator: loaded unverified.
    expect(await metricsOf(p)).toMatch(
      /catalog_verifications_total\{result="allowed_unverified",reason="uncatalogued",engine="tgi"\} 2/,
    );
  });
});

describe('pool-managerd nodes verify with their own trust policy and roots', () => {
  let o: Running;
  const started: PoolManagerd[] = [];
  const credential = randomUUID();
  const credentialEnv = `LLORCH_TEST_TRUST_CRED_${process.pid}`;

  async function node(id: string, policy: 'strict' | 'permissive', pool: RawPool) {
    process.env[credentialEnv] = credential;
    const { config } = validateConfig({
      profile: 'dev',
      data_dir: await mkdtemp(join(tmpdir(), 'llorch-trust-node-')),
      node: { id, orchestrator_url: o.url, credential_env: credentialEnv, heartbeat_ms: 100 },
      catalog: { trust_policy: policy, trust_roots: [trustRoot] },
      pools: [pool],
    });
    const logs: string[] = [];
    const metrics = new OrchMetrics({ processMetrics: false });
    const pm = await startPoolManagerd(config, capture(logs), { metrics });
    started.push(pm);
    await pm.registered;
    return { logs, metrics };
  }
  const remote = (id: string, host: string): RawPool => ({
    id,
    engine: 'vllm',
    model: { id },
    ctx: TEST_CTX,
    devices: 'cpu',
    hosts: [host],
    launch: { parallel: 2 },
  });

  beforeAll(async () => {
    o = await start(
      'strict',
      {
        nodes: [
          { id: 'node-strict', sha256: sha256Hex(credential) },
          { id: 'node-permissive', sha256: sha256Hex(credential) },
        ],
        node_timeout_ms: 5_000,
        pools: [remote('far', 'node-strict'), remote('far-p', 'node-permissive')],
      },
      [{ id: 'signed-file', source: signedFile }],
    );
  }, 60_000);
  afterAll(async () => {
    for (const pm of started) await pm.stop();
    await o?.orch.close(1_000);
  });

  it('a strict node refuses an unsigned file (cause reported, logged, counted); a reload to a catalog entry brings its signature', async () => {
    const n = await node(
      'node-strict',
      'strict',
      simPool('far', 'vllm', { model: { id: 'far', path: unsignedFile } }),
    );
    await until(async () => (await health(o, 'far')).replicas.some((r) => r.cause !== undefined), 60_000);
    expect((await health(o, 'far')).replicas[0]?.cause).toMatch(
      /unsigned\.bin failed verification before load \(unsigned: no signature for sha256:[0-9a-f]{64}.*refused by the strict trust policy/,
    );
    expect(
      logged(n.logs, (l) => l['event'] === 'catalog.verification' && l['pool_id'] === 'far')[0],
    ).toMatchObject({ result: 'failed', reason: 'unsigned', engine: 'vllm', phase: 'load' });
    expect(await n.metrics.render()).toMatch(
      /catalog_verifications_total\{result="failed",reason="unsigned",engine="vllm"\} 1/,
    );

    // A host path never reaches the node under the orchestrator's strict policy.
    expect((await reload(o, 'far', signedFile)).status).toBe(403);
    // A catalog entry does, with its digest and signature, which the node checks against its roots.
    expect((await reload(o, 'far', 'signed-file')).status).toBe(202);
    expect(await finished(o, 'far')).toMatchObject({ state: 'succeeded' });
    await until(async () => (await health(o, 'far')).ready, 90_000);
    expect(await n.metrics.render()).toMatch(
      /catalog_verifications_total\{result="verified",reason="signed",engine="vllm"\} 1/,
    );
  });

  it('a permissive node loads the unsigned file, with a warning', async () => {
    const n = await node(
      'node-permissive',
      'permissive',
      simPool('far-p', 'vllm', { model: { id: 'far-p', path: unsignedFile } }),
    );
    await until(async () => (await health(o, 'far-p')).ready, 60_000);
    expect(logged(n.logs, (l) => l['event'] === 'catalog.permissive_load')).toEqual([
      expect.objectContaining({ pool_id: 'far-p', reason: 'unsigned', level: 40 }),
    ]);
    expect(await n.metrics.render()).toMatch(
      /catalog_verifications_total\{result="allowed_unverified",reason="unsigned",engine="vllm"\} 1/,
    );
  });
});
