/** The `plugins:` configuration (SPEC §10, §13): schema, defaults and cross-field checks. */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/resolve-config.js';

const base = {
  profile: 'dev',
  pools: [
    {
      id: 'p0',
      engine: 'llamacpp',
      model: { id: 'p0' },
      ctx: 2048,
      devices: 'cpu',
      launch: { worker: 'sim' },
    },
  ],
};

function problems(plugins: unknown[]): string[] {
  try {
    validateConfig({ ...base, plugins }, { baseDir: '/etc/llorch' });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('plugins configuration', () => {
  it('applies the defaults and resolves the path against the config file', () => {
    const { config } = validateConfig(
      { ...base, plugins: [{ id: 'a', path: 'plugins/a.wasm', hooks: ['admission'] }] },
      { baseDir: '/etc/llorch' },
    );
    expect(config.plugins).toEqual([
      {
        id: 'a',
        source: { kind: 'file', path: '/etc/llorch/plugins/a.wasm' },
        sha256: undefined,
        hooks: ['admission'],
        params: {},
        budgetMs: 1,
        memoryMaxBytes: 16 * 1_048_576,
        quarantineAfter: 5,
        bounds: { priorities: ['interactive', 'batch'], weightMin: 0.5, weightMax: 2 },
      },
    ]);
    expect(validateConfig(base).config.plugins).toEqual([]);
  });

  it('refuses a plugin configured twice and inverted weight bounds, naming the entry', () => {
    const a = { id: 'a', path: 'a.wasm', hooks: ['admission'] };
    expect(problems([a, a])).toEqual(["plugins[1].id: 'a' is configured twice"]);
    expect(problems([{ ...a, bounds: { weight_min: 3, weight_max: 2 } }])).toEqual([
      'plugins[0].bounds: weight_min 3 exceeds weight_max 2',
    ]);
  });

  it('refuses fields outside the schema with their path', () => {
    const found = problems([{ id: 'a', path: 'a.wasm', hooks: ['routing'], budget_ms: 0 }]);
    expect(found.join('\n')).toMatch(/plugins\/0\/hooks\/0|plugins\[0\]\.hooks/);
    expect(found.join('\n')).toMatch(/budget_ms/);
  });
});
