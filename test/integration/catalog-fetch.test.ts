/**
 * Remote catalog sources against a local HTTP server speaking the Hub's `resolve` paths: a
 * download that drops mid-transfer resumes with HTTP Range and is hashed on the fly; signatures
 * published next to the file are fetched and verified; the cache keeps to its quota by evicting
 * the least recently used model no pool serves.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchToFile, hfUrl } from '../../src/catalog/fetcher.js';
import { generateKeyPair, signMinisign } from '../../src/catalog/minisign.js';
import { KEYS, TEST_KEYS, call, simPool, startHarness, type Harness } from '../support/harness.js';

const key = generateKeyPair('hub');
const files = new Map<string, Buffer>();
const requests: { path: string; range: string | undefined }[] = [];
let dropFirst = new Set<string>();
let server: Server;
let base = '';

beforeAll(async () => {
  for (const [name, size] of [
    ['org/repo/resolve/main/big.gguf', 300_000],
    ['org/repo/resolve/main/a.gguf', 40_000],
    ['org/repo/resolve/main/b.gguf', 40_000],
  ] as const) {
    const data = Buffer.alloc(size, name.length);
    for (let i = 0; i < size; i += 997) data[i] = i % 251;
    files.set(`/${name}`, data);
    files.set(`/${name}.minisig`, Buffer.from(signMinisign(data, key, name)));
  }
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push({ path, range: req.headers.range });
    const data = files.get(path);
    if (!data) return res.writeHead(404).end();
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const body = data.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length,
      ...(m ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    if (dropFirst.has(path)) {
      // Drop the connection a third of the way through: the client must resume.
      dropFirst.delete(path);
      res.write(body.subarray(0, Math.floor(body.length / 3)), () => setTimeout(() => res.destroy(), 150));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('fetcher', () => {
  it('resumes a dropped download with Range and hashes the whole file on the fly', async () => {
    const path = '/org/repo/resolve/main/big.gguf';
    dropFirst = new Set([path]);
    const dest = join(await mkdtemp(join(tmpdir(), 'llorch-fetch-')), 'big.gguf');
    const seen: number[] = [];
    const digest = await fetchToFile(`${base}${path}`, dest, { onProgress: (b) => seen.push(b) });
    expect(digest).toBe(sha(files.get(path) ?? Buffer.alloc(0)));
    const hits = requests.filter((r) => r.path === path);
    expect(hits.length).toBeGreaterThanOrEqual(2);
    // The retry asked only for the rest of the file.
    expect(hits.slice(1).some((r) => /^bytes=[1-9]\d*-$/.test(r.range ?? ''))).toBe(true);
    expect(seen.at(-1)).toBe(300_000);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('refuses a download that does not match the pinned digest, keeping nothing', async () => {
    const dest = join(await mkdtemp(join(tmpdir(), 'llorch-fetch-')), 'a.gguf');
    await expect(
      fetchToFile(`${base}/org/repo/resolve/main/a.gguf`, dest, {
        expectedDigest: `sha256:${'0'.repeat(64)}`,
      }),
    ).rejects.toThrow(/not the pinned/);
    expect(existsSync(dest)).toBe(false);
  });

  it('maps hf: sources to the Hub resolve URL', () => {
    expect(hfUrl('hf:org/repo/sub/m.gguf@v1.2', 'https://huggingface.co')).toBe(
      'https://huggingface.co/org/repo/resolve/v1.2/sub/m.gguf',
    );
    expect(hfUrl('hf:org/repo/m.gguf', 'http://hub.local/')).toBe(
      'http://hub.local/org/repo/resolve/main/m.gguf',
    );
  });
});

describe('catalog with hf: sources', () => {
  let h: Harness;
  afterAll(async () => {
    await h.close();
  });

  it('downloads, verifies the published signature, and evicts least recently used models beyond the quota', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-hub-'));
    await writeFile(join(dir, 'hub.pub'), key.publicKeyText);
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      data_dir: dir,
      catalog: {
        trust_policy: 'strict',
        trust_roots: [join(dir, 'hub.pub')],
        allowed_sources: ['path', 'hf'],
        hf_endpoint: base,
        cache_quota_bytes: 100_000,
      },
      pools: [simPool('served-a', 'vllm', { model: { id: 'a' } })],
    });
    const add = (id: string, source: string) =>
      call(h.url, 'POST', '/v1/catalog/models', { key: KEYS.ops, body: { id, source } });
    const a = await add('a', 'hf:org/repo/a.gguf');
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({
      verified: true,
      digest: sha(files.get('/org/repo/resolve/main/a.gguf') ?? Buffer.alloc(0)),
    });
    expect((await add('b', 'hf:org/repo/b.gguf')).status).toBe(201);
    // 'big' (300 kB) exceeds the 100 kB quota with a and b: b (no pool serves it) is evicted, a stays.
    expect((await add('big', 'hf:org/repo/big.gguf')).status).toBe(201);
    const verify = async (id: string) =>
      (
        (await call(h.url, 'POST', `/v1/catalog/models/${id}/verify`, { key: KEYS.ops })).json as {
          reason: string;
        }
      ).reason;
    expect(await verify('b')).toBe('missing_file');
    expect(await verify('a')).toBe('signed');
    expect(await verify('big')).toBe('signed');
    const missing = await add('nope', 'hf:org/repo/missing.gguf');
    expect(missing.status).toBe(400);
  });
});
