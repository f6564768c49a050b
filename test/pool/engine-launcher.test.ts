/** Command lines of each engine (documented CLI flags) and of the simulator in its dialect. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import type { ResolvedPool } from '../../src/config/resolved-config.js';
import { simArgs, tgiArgs, tritonArgs, vllmArgs, engineEnv } from '../../src/pool/engine-launcher.js';

function pool(engine: string, launch = '{}'): ResolvedPool {
  const { config } = parseConfig(
    `
pools:
  - id: p
    engine: ${engine}
    model: { id: served-name, path: /models/m }
    ctx: 4096
    replicas: 2
    devices: [2, 3]
    launch: ${launch}
`,
    { baseDir: '/' },
  );
  const p = config.pools[0];
  if (!p) throw new Error('no pool');
  return p;
}

describe('native engine command lines', () => {
  it('vllm serve: served name, max model len, sequences, tensor parallel over the mask; no key on the command line', () => {
    expect(vllmArgs(pool('vllm', '{ parallel: 32, api_key: s3cret }'), 9000)).toEqual([
      'serve',
      '/models/m',
      '--host',
      '127.0.0.1',
      '--port',
      '9000',
      '--served-model-name',
      'served-name',
      '--max-model-len',
      '4096',
      '--max-num-seqs',
      '32',
      '--tensor-parallel-size',
      '2',
      '--seed',
      '0',
      '--gpu-memory-utilization',
      '0.9',
    ]);
  });

  it('text-generation-launcher: total/input tokens from ctx, concurrency, shards', () => {
    expect(tgiArgs(pool('tgi', '{ parallel: 8 }'), 9001)).toEqual([
      '--model-id',
      '/models/m',
      '--hostname',
      '127.0.0.1',
      '--port',
      '9001',
      '--max-total-tokens',
      '4096',
      '--max-input-tokens',
      '4095',
      '--max-concurrent-requests',
      '8',
      '--num-shard',
      '2',
    ]);
  });

  it('tritonserver: repository, HTTP, metrics and gRPC ports on the launch host', () => {
    expect(tritonArgs(pool('triton'), [9002, 9003, 9004])).toEqual([
      '--model-repository=/models/m',
      '--http-address=127.0.0.1',
      '--http-port=9002',
      '--metrics-address=127.0.0.1',
      '--metrics-port=9003',
      '--grpc-address=127.0.0.1',
      '--grpc-port=9004',
    ]);
  });

  it('the device mask becomes CUDA_VISIBLE_DEVICES', () => {
    expect(engineEnv(pool('vllm'), {})).toEqual({
      CUDA_VISIBLE_DEVICES: '2,3',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    });
  });

  it("the API key goes in the engine's own variable, never on the command line; an inherited one is dropped", () => {
    const keyed = (engine: string) => engineEnv(pool(engine, '{ api_key: s3cret }'), { API_KEY: 'x' });
    expect(keyed('llamacpp')).toMatchObject({ LLAMA_API_KEY: 's3cret' });
    expect(keyed('vllm')).toMatchObject({ VLLM_API_KEY: 's3cret' });
    expect(keyed('tgi')).toMatchObject({ API_KEY: 's3cret' });
    const unkeyed = engineEnv(pool('tgi'), { API_KEY: 'inherited', PATH: '/bin' });
    expect(unkeyed).toMatchObject({ PATH: '/bin' });
    expect(unkeyed).not.toHaveProperty('API_KEY');
    expect(vllmArgs(pool('vllm', '{ api_key: s3cret }'), 1).join(' ')).not.toContain('s3cret');
    expect(simArgs(pool('llamacpp', '{ worker: sim, api_key: s3cret }'), 0, [1]).join(' ')).not.toContain(
      's3cret',
    );
  });
});

describe('simulator command line', () => {
  it('speaks the pool engine, with per-replica versions and the Triton metrics port', () => {
    const p = pool(
      'triton',
      '{ worker: sim, parallel: 4, sim: { tokens_per_s: 99, engine_version: [a, b] } }',
    );
    const args = simArgs(p, 1, [7000, 7001]);
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--dialect')).toBe('triton');
    expect(flag('--engine-version')).toBe('b');
    expect(flag('--slots')).toBe('4');
    expect(flag('--tokens-per-s')).toBe('99');
    expect(flag('--metrics-port')).toBe('7001');
    expect(flag('--model')).toBe('served-name');
  });
});
