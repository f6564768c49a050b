import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/resolve-config.js';

const pool = (extra: string, profile = 'prod') => `
profile: ${profile}
pools:
  - id: p
    engine: vllm
    ctx: 1024
    devices: cpu
${extra}`;

function problems(text: string): string[] {
  try {
    parseConfig(text, { baseDir: '/etc/llorch' });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('simulated pools in the config (launch.worker: sim)', () => {
  it('need no model file and may run on CPU in the prod profile (they do no inference)', () => {
    const { config } = parseConfig(
      pool(`    model: { id: m }\n    replicas: 2\n    launch: { worker: sim, sim: { tokens_per_s: 50 } }`),
      {
        baseDir: '/etc/llorch',
      },
    );
    const p = config.pools[0];
    expect(p?.launch.worker).toBe('sim');
    expect(p?.model.path).toBe('');
    expect(p?.launch.sim).toMatchObject({
      tokensPerSecond: 50,
      engineVersions: ['sim-vllm-1', 'sim-vllm-1'],
    });
  });

  it('a real engine still needs GPUs in prod (its model may come from the catalog by id)', () => {
    const found = problems(pool(`    model: { id: m }`));
    expect(found).toEqual([expect.stringContaining('ORCH-1101')]);
  });

  it('per-replica engine versions must match the replica count; Triton takes no API key', () => {
    expect(
      problems(
        pool(
          `    model: { id: m }\n    replicas: 2\n    launch: { worker: sim, sim: { engine_version: [a, b, c] } }`,
        ),
      ),
    ).toEqual([
      expect.stringContaining('launch.sim.engine_version: has 3 entries but the pool has 2 replicas'),
    ]);
    expect(
      problems(
        pool(`    model: { id: m }\n    launch: { worker: sim, api_key: k }`).replace(
          'engine: vllm',
          'engine: triton',
        ),
      ),
    ).toEqual([expect.stringContaining('launch.api_key: Triton has no API key')]);
  });

  it('unknown worker kinds and sim fields are refused with their path', () => {
    const found = problems(pool(`    model: { id: m }\n    launch: { worker: docker, sim: { speed: 3 } }`));
    expect(found.join('\n')).toMatch(/launch\/worker|launch\.worker/);
    expect(found.join('\n')).toMatch(/speed/);
  });
});
