/**
 * Engine API keys in the configuration (SPEC §11, §17 §11): inline, from a file or from the
 * environment, one source at most; and no engine beyond loopback without a credential: Triton,
 * which has no API key, stays on loopback unless a pool-managerd node guards it.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/resolve-config.js';
import { validateConfig } from '../../src/config/load-config.js';

const pool = (engine: string, launch: Record<string, unknown>) => ({
  id: 'p',
  engine,
  model: { id: 'm', path: '/models/m' },
  ctx: 1024,
  devices: [0],
  launch,
});

function problems(doc: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  try {
    validateConfig(doc, { env, baseDir: '/' });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

const node = { id: 'gpu-a', orchestrator_url: 'http://orch:8080' };

describe('engine API keys (config)', () => {
  it('llama.cpp, vLLM and TGI take a key inline, from a file or from the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-key-'));
    await writeFile(join(dir, 'engine.key'), '  from-file\n');
    const key = (engine: string, launch: Record<string, unknown>, env: Record<string, string> = {}) =>
      validateConfig({ pools: [pool(engine, launch)] }, { env, baseDir: dir }).config.pools[0]?.launch.apiKey;
    expect(key('llamacpp', { api_key: 'inline' })).toBe('inline');
    expect(key('vllm', { api_key_file: 'engine.key' })).toBe('from-file');
    expect(key('tgi', { api_key_env: 'ENGINE_KEY' }, { ENGINE_KEY: 'from-env' })).toBe('from-env');
    expect(key('llamacpp', {})).toBeUndefined();
  });

  it('a source that cannot be honoured is an error naming its field', () => {
    expect(problems({ pools: [pool('vllm', { api_key_env: 'MISSING' })] })).toEqual([
      'pools[0].launch.api_key_env: $MISSING is not set or empty',
    ]);
    expect(problems({ pools: [pool('vllm', { api_key_file: '/nonexistent/key' })] })).toEqual([
      expect.stringMatching(/^pools\[0\]\.launch\.api_key_file: cannot read \/nonexistent\/key/),
    ]);
    expect(problems({ pools: [pool('vllm', { api_key: 'a', api_key_env: 'B' })] })).toEqual([
      'pools[0].launch.api_key_env: give one of api_key, api_key_file, api_key_env',
    ]);
  });

  it('Triton: no key and no host beyond loopback on the orchestrator; a pool-managerd node guards it', () => {
    expect(problems({ pools: [pool('triton', { api_key: 'k' })] })).toEqual([
      expect.stringMatching(/^pools\[0\]\.launch\.api_key: Triton has no API key/),
    ]);
    expect(problems({ pools: [pool('triton', { host: '0.0.0.0' })] })).toEqual([
      expect.stringMatching(
        /^pools\[0\]\.launch\.host: '0\.0\.0\.0' is not a loopback address, and Triton has no API key/,
      ),
    ]);
    expect(problems({ node, pools: [pool('triton', { host: '0.0.0.0', api_key: 'k' })] })).toEqual([]);
    // A remote pool launches nothing here: its host setting is the node's business.
    expect(
      problems({ nodes: [], pools: [{ ...pool('triton', { host: '0.0.0.0' }), hosts: ['gpu-a'] }] }),
    ).toEqual([]);
  });

  it('pool-managerd takes its node credential from a file as well', () => {
    const { config } = validateConfig(
      { node: { ...node, credential_file: 'node.cred' }, pools: [pool('vllm', {})] },
      { baseDir: '/etc/llorch' },
    );
    expect(config.node?.credentialFile).toBe('/etc/llorch/node.cred');
  });
});
