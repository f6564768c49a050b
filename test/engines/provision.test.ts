import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cachedBinaryPath,
  defaultCacheDir,
  findLlamaServer,
  parseVersion,
} from '../../src/engines/llamacpp/provision.js';

async function fakeBinary(dir: string, name = 'llama-server'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const p = join(dir, name);
  await writeFile(p, '#!/bin/sh\necho "version: 1 (abc)"\n');
  await chmod(p, 0o755);
  return p;
}

describe('llama-server provisioning', () => {
  it('prefers the configured path, then PATH, then the cache', async () => {
    const root = await mkdtemp(join(tmpdir(), 'prov-'));
    const cacheDir = join(root, 'cache');
    const cached = await fakeBinary(join(cachedBinaryPath(cacheDir), '..'));
    const onPath = await fakeBinary(join(root, 'bin'));
    const explicit = await fakeBinary(join(root, 'opt'), 'my-llama');
    const env = { PATH: join(root, 'bin') };
    expect(await findLlamaServer({ cacheDir, env, explicitPath: explicit })).toBe(explicit);
    expect(await findLlamaServer({ cacheDir, env })).toBe(onPath);
    expect(await findLlamaServer({ cacheDir, env: { PATH: '' } })).toBe(cached);
    expect(await findLlamaServer({ cacheDir: join(root, 'empty'), env: { PATH: '' } })).toBeUndefined();
  });

  it('fails clearly when a configured binary is missing', async () => {
    await expect(
      findLlamaServer({ cacheDir: '/nonexistent', explicitPath: '/no/such/llama-server' }),
    ).rejects.toThrow(/not an executable/);
    await expect(
      findLlamaServer({
        cacheDir: '/nonexistent',
        explicitPath: 'no-such-binary',
        env: { PATH: '/nonexistent' },
      }),
    ).rejects.toThrow(/on PATH/);
  });

  it('derives the cache dir from XDG_CACHE_HOME only when it is absolute', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u')).toBe('/x/llama-orch');
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'rel' }, '/home/u')).toBe('/home/u/.cache/llama-orch');
  });

  it('parses the version line into the /props build_info form', () => {
    expect(parseVersion('version: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU')).toBe('b1-de3ff81');
    expect(parseVersion('version: 4567 (abcdef0)')).toBe('b4567-abcdef0');
    expect(parseVersion('nothing')).toBe('unknown');
  });
});
