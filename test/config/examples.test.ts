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

  it('examples/multi-host: an orchestrator with node credentials and a remote pool, and a GPU node', async () => {
    const { config: orch } = await loadConfigFile('examples/multi-host/orchestrator.yaml');
    expect([...orch.nodes.keys()]).toEqual(['gpu-a', 'gpu-b']);
    expect(orch.pools[0]?.hosts).toEqual(['gpu-a', 'gpu-b']);
    const { config: node } = await loadConfigFile('examples/multi-host/gpu-node.yaml');
    expect(node.node).toMatchObject({
      id: 'gpu-a',
      orchestratorUrl: 'http://orchestrator.lan:8080',
      heartbeatMs: 500,
    });
    expect(node.pools[0]?.launch.restart).toMatchObject({ maxFailures: 5, cooldownMs: 60_000 });
  });
});
