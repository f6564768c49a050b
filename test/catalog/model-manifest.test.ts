/**
 * Directory models as signed manifests (SPEC §17 §8): every file's relative path and SHA-256 in
 * RFC 8785 canonical JSON, signed by `llorch catalog sign DIR` in minisign's own format (the stock
 * minisign CLI verifies the manifest it writes), and one byte changed anywhere → refused.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ArtifactVerifier, hashArtifact } from '../../src/catalog/artifact-verifier.js';
import { parsePublicKey } from '../../src/catalog/minisign.js';
import { buildManifest, manifestBytes, manifestDigest } from '../../src/catalog/model-manifest.js';
import { catalogCommand } from '../../src/cli/catalog.js';

const run = promisify(execFile);
let dir: string;

/** Runs `llorch catalog …` in-process; returns what it printed. */
async function cli(...args: string[]): Promise<Record<string, unknown>> {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  try {
    await catalogCommand(args);
  } finally {
    spy.mockRestore();
  }
  return JSON.parse(out.join('')) as Record<string, unknown>;
}

async function repo(name: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(join(root, 'tokenizer'), { recursive: true });
  await writeFile(join(root, 'config.json'), '{"model_type":"llama"}');
  await writeFile(join(root, 'model.safetensors'), Buffer.alloc(4096, 7));
  await writeFile(join(root, 'tokenizer', 'tokenizer.json'), '{"version":"1.0"}');
  return root;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'llorch-manifest-'));
});

describe('model manifests', () => {
  it('list every file (nested, links followed) by relative path and SHA-256, as canonical JSON', async () => {
    const root = await repo('m1');
    // The Hub's cache keeps snapshot files as links to blobs: the link's path, the blob's bytes.
    await writeFile(join(dir, 'blob'), 'blob bytes');
    await symlink(join(dir, 'blob'), join(root, 'generation_config.json'));
    const m = await buildManifest(root);
    expect(m.files.map((f) => f.path)).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer/tokenizer.json',
    ]);
    const sha = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    expect(m.files[1]).toEqual({ path: 'generation_config.json', sha256: sha('blob bytes'), size: 10 });
    // RFC 8785: keys sorted, no whitespace — the bytes the signature covers.
    const text = manifestBytes(m).toString('utf8');
    expect(text.startsWith('{"files":[{"path":"config.json","sha256":"sha256:')).toBe(true);
    expect(text).not.toMatch(/\s/);
    expect(manifestDigest(m)).toBe(sha(manifestBytes(m)));
    // The same tree elsewhere has the same digest.
    expect((await hashArtifact(await repo('m1-copy')))?.digest).not.toBe(manifestDigest(m));
    await symlink(join(dir, 'blob'), join(dir, 'm1-copy', 'generation_config.json'));
    expect((await hashArtifact(join(dir, 'm1-copy')))?.digest).toBe(manifestDigest(m));
  });

  it('`llorch catalog sign DIR` signs the manifest; one byte changed in any file fails verification, naming it', async () => {
    const keys = await cli('keygen', '--out', join(dir, 'release'));
    const root = await repo('signed');
    const signed = await cli('sign', root, '--key', String(keys['secret_key']));
    expect(signed).toMatchObject({
      signature: `${root}.minisig`,
      manifest: `${root}.manifest.json`,
      files: 3,
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(await cli('manifest', root)).toMatchObject({ digest: signed['digest'] });
    const verifier = new ArtifactVerifier([
      parsePublicKey(await readFile(String(keys['public_key']), 'utf8')),
    ]);
    const ok = await verifier.verify(root, undefined, String(signed['digest']));
    expect(ok).toMatchObject({ ok: true, reason: 'signed', digest: signed['digest'] });

    if (existsSync('/usr/bin/minisign')) {
      // The format is minisign's own: the stock CLI verifies the manifest `sign` wrote.
      const { stdout } = await run('minisign', [
        '-V',
        '-p',
        String(keys['public_key']),
        '-m',
        `${root}.manifest.json`,
        '-x',
        `${root}.minisig`,
      ]);
      expect(stdout).toMatch(/Signature and comment signature verified/);
    }

    const file = join(root, 'model.safetensors');
    const bytes = await readFile(file);
    bytes[1234] = (bytes[1234] ?? 0) ^ 1;
    await writeFile(file, bytes);
    const pinned = await verifier.verify(root, undefined, String(signed['digest']));
    expect(pinned).toMatchObject({
      ok: false,
      reason: 'digest_mismatch',
      detail: 'model.safetensors changed',
    });
    // Unpinned, the signature no longer covers what is there.
    expect(await verifier.verify(root, undefined, undefined)).toMatchObject({
      ok: false,
      reason: 'bad_signature',
    });
  });
});
