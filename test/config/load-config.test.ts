import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/resolve-config.js';
import { parseConfig } from '../../src/config/load-config.js';

const base = `
profile: dev
pools:
  - id: tiny
    engine: llamacpp
    model: { id: tiny, path: ./models/tiny.gguf }
    ctx: 256
    devices: cpu
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, { baseDir: '/etc/llorch' });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config loading (ORCH-3030)', () => {
  it('applies defaults and resolves paths against the file directory', () => {
    const { config, warnings } = parseConfig(base, { baseDir: '/etc/llorch' });
    expect(warnings).toEqual([]);
    const pool = config.pools[0];
    expect(pool?.model.path).toBe('/etc/llorch/models/tiny.gguf');
    expect(pool?.queue).toEqual({
      capacity: 256,
      fullPolicy: 'reject',
      priorityCapacity: { interactive: 256, batch: 256 },
    });
    expect(config.fairness.weights).toEqual({ interactive: 8, batch: 1 });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
  });

  it('strict mode rejects unknown fields naming their path', () => {
    const text = base.replace('ctx: 256', 'ctx: 256\n    qeueu: { capacity: 3 }') + 'lisen: {}\n';
    const p = problems(text);
    expect(p).toContain('pools[0].qeueu: unknown field (config_mode: strict)');
    expect(p).toContain('lisen: unknown field (config_mode: strict)');
  });

  it('compat mode drops unknown fields and reports each', () => {
    const text = `config_mode: compat\n${base.replace('ctx: 256', 'ctx: 256\n    qeueu: 1')}`;
    const { config, warnings } = parseConfig(text);
    expect(warnings).toEqual(['pools[0].qeueu: unknown field ignored (config_mode: compat)']);
    expect(config.pools).toHaveLength(1);
  });

  it('compat mode still rejects invalid known fields', () => {
    const text = `config_mode: compat\n${base.replace('ctx: 256', 'ctx: "big"')}`;
    expect(problems(text)).toContain('pools[0].ctx: must be integer');
  });

  it('refuses CPU pools outside the dev profile (ORCH-1101)', () => {
    const p = problems(base.replace('profile: dev', 'profile: prod'));
    expect(p.join('\n')).toMatch(/pools\[0\]\.devices: .*ORCH-1101/);
  });

  it('refuses a non-loopback listen address without API keys (SPEC §11)', () => {
    const p = problems(`${base}listen: { host: 0.0.0.0 }\n`);
    expect(p.join('\n')).toMatch(/listen\.host: '0\.0\.0\.0' is not a loopback address/);
  });

  it('names missing required fields and bad enums', () => {
    const p = problems(base.replace('engine: llamacpp', 'engine: ollama').replace('ctx: 256', ''));
    expect(p).toContain('pools[0].ctx: required field is missing');
    expect(p).toContain('pools[0].engine: must be one of llamacpp, vllm, tgi, triton');
  });

  it('checks tensor_split against devices', () => {
    const text = base
      .replace('profile: dev', 'profile: prod')
      .replace('devices: cpu', 'devices: [0, 1]\n    tensor_split: [1]');
    expect(problems(text).join('\n')).toMatch(/tensor_split: has 1 entry but devices has 2/);
  });

  it('refuses tensor_split on engines that cannot split unevenly, naming field and engine', () => {
    const gpu = base.replace('profile: dev', 'profile: prod').replace('devices: cpu', 'devices: [0, 1]');
    for (const engine of ['vllm', 'tgi', 'triton']) {
      const text = gpu
        .replace('engine: llamacpp', `engine: ${engine}`)
        .replace('devices: [0, 1]', 'devices: [0, 1]\n    tensor_split: [0.7, 0.3]');
      expect(problems(text).join('\n')).toMatch(
        new RegExp(`pools\\[0\\]\\.tensor_split: engine '${engine}' cannot split`),
      );
    }
    const llama = gpu.replace('devices: [0, 1]', 'devices: [0, 1]\n    tensor_split: [0.7, 0.3]');
    expect(parseConfig(llama).config.pools[0]?.tensorSplit).toEqual([0.7, 0.3]);
  });

  it('has no preload switch: pools always preload (ORCH-3002), so the field is unknown', () => {
    const text = base.replace('ctx: 256', 'ctx: 256\n    preload: false');
    expect(problems(text)).toContain('pools[0].preload: unknown field (config_mode: strict)');
    const { config, warnings } = parseConfig(`config_mode: compat\n${text}`);
    expect(warnings).toEqual(['pools[0].preload: unknown field ignored (config_mode: compat)']);
    expect(config.pools[0]).not.toHaveProperty('preload');
  });

  it('reports YAML syntax errors', () => {
    expect(problems('pools: [').join('\n')).toMatch(/^yaml: /);
  });
});
