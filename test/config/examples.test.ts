import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load-config.js';

describe('example configs', () => {
  it('examples/dev.yaml is a valid dev-profile config', async () => {
    const { config, warnings } = await loadConfigFile('examples/dev.yaml');
    expect(warnings).toEqual([]);
    expect(config.profile).toBe('dev');
    expect(config.pools.map((p) => p.id)).toEqual(['tiny']);
  });

  it('examples/prod-2gpu.yaml is a valid prod config on two GPUs with hashed keys', async () => {
    const { config } = await loadConfigFile('examples/prod-2gpu.yaml');
    expect(config.profile).toBe('prod');
    expect(config.pools.flatMap((p) => (p.devices === 'cpu' ? [] : p.devices))).toEqual([0, 0, 1]);
    expect(config.auth.keys.map((k) => k.id)).toEqual(['agents', 'batch-jobs', 'ops']);
  });

  it('examples/sim-fleet.yaml is a prod config of simulated pools, one per engine', async () => {
    const { config } = await loadConfigFile('examples/sim-fleet.yaml');
    expect(config.profile).toBe('prod');
    expect(config.pools.map((p) => [p.engine, p.launch.worker])).toEqual([
      ['llamacpp', 'sim'],
      ['vllm', 'sim'],
      ['tgi', 'sim'],
      ['triton', 'sim'],
    ]);
    expect(config.pools[3]?.launch.sim.engineVersions).toEqual(['trtllm-0.13.0']);
  });
});
