import { describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load-config.js';
import { isLoopbackHost } from '../../src/config/resolve-config.js';
import { startOrchestrator } from '../../src/main.js';
import { securePool } from '../../src/nodes/engine-credentials.js';
import { createLogger } from '../../src/util/logger.js';

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
    expect(config.pools.flatMap((p) => (p.devices === 'cpu' ? [] : p.devices))).toEqual([0, 1, 0, 1]);
    expect(config.auth.keys.map((k) => k.id)).toEqual(['agents', 'batch-jobs', 'ops']);
  });

  it('every prod example resolves to the per-replica devices its comments describe', async () => {
    const perReplica = async (file: string) =>
      Object.fromEntries((await loadConfigFile(file)).config.pools.map((p) => [p.id, p.replicaDevices]));
    // One replica set of two replicas, one per GPU; the split pool's one replica on both.
    expect(await perReplica('examples/prod-2gpu.yaml')).toEqual({
      'llama3-8b': [[0], [1]],
      'qwen-32b-split': [[0, 1]],
    });
    expect(await perReplica('examples/sim-fleet.yaml')).toEqual({
      'chat-llamacpp': [[0], [0]],
      'chat-vllm': [[1], [1]],
      'chat-tgi': [[2]],
      'chat-triton': [[3, 4]],
    });
    expect(await perReplica('examples/multi-host/orchestrator.yaml')).toEqual({ 'llama3-8b': [[0]] });
    expect(await perReplica('examples/multi-host/gpu-node.yaml')).toEqual({ 'llama3-8b': [[0]] });
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

  it('examples/multi-host/orchestrator.yaml starts in prod on a host without GPUs (ORCH-1101: its pools run on the GPU hosts)', async () => {
    const { config } = await loadConfigFile('examples/multi-host/orchestrator.yaml');
    expect(config.profile).toBe('prod');
    expect(config.pools.every((p) => p.hosts.length > 0)).toBe(true);
    const dataDir = await mkdtemp(join(tmpdir(), 'llorch-example-'));
    // As on a CPU-only control-plane host: no nvidia-smi at all. Only the address is local to the test.
    const running = await startOrchestrator(
      {
        ...config,
        listen: { host: '127.0.0.1', port: 0 },
        dataDir,
        storage: { ...config.storage, sqlitePath: join(dataDir, 'llorch.db') },
        engines: { ...config.engines, nvidiaSmiPath: join(dataDir, 'no-nvidia-smi') },
      },
      { logger: createLogger({ level: 'silent' }), processMetrics: false },
    );
    try {
      expect(running.orchestrator.pools.map((p) => p.id)).toEqual(['llama3-8b']);
    } finally {
      await running.close(0);
    }
  });

  it('examples/multi-host/gpu-node.yaml binds its engines to the private address, never every interface, and names no fixed key', async () => {
    const { config: node } = await loadConfigFile('examples/multi-host/gpu-node.yaml');
    for (const p of node.pools) {
      expect(isLoopbackHost(p.launch.host)).toBe(false);
      expect(p.launch.host).not.toMatch(/^(0\.0\.0\.0|::|\[::\])$/);
      // No key configured: pool-managerd generates one per engine launch.
      expect(p.launch.apiKey).toBeUndefined();
      expect(securePool(p).key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });
});
