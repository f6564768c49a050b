/**
 * The Triton fields of a pool: the model names of its repository (`launch.triton`) and, for
 * simulated pools, the stock repository the simulator serves (`launch.sim.triton_ensemble`).
 * Every field that cannot be honoured is a config error naming it.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/resolve-config.js';
import { simArgs } from '../../src/pool/engine-launcher.js';

const pool = (engine: string, launch: string) => `
profile: dev
pools:
  - id: p
    engine: ${engine}
    model: { id: m }
    ctx: 1024
    devices: cpu
    launch: ${launch}
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

describe('launch.triton', () => {
  it('defaults to the stock inflight_batcher_llm names; other engines have none', () => {
    const { config } = parseConfig(pool('triton', '{ worker: sim }'));
    expect(config.pools[0]?.launch.triton).toEqual({
      ensemble: 'ensemble',
      preprocessing: 'preprocessing',
      tensorrtLlm: 'tensorrt_llm',
    });
    expect(config.pools[0]?.launch.sim.tritonEnsemble).toBe('current');
    expect(parseConfig(pool('tgi', '{ worker: sim }')).config.pools[0]?.launch.triton).toBeUndefined();
  });

  it('configured names reach the adapter and the simulator', () => {
    const { config } = parseConfig(
      pool(
        'triton',
        '{ worker: sim, sim: { triton_ensemble: legacy }, triton: { ensemble_model: llm, preprocessing_model: tok, tensorrt_llm_model: trt } }',
      ),
    );
    const p = config.pools[0];
    if (!p) throw new Error('no pool');
    expect(p.launch.triton).toEqual({ ensemble: 'llm', preprocessing: 'tok', tensorrtLlm: 'trt' });
    const args = simArgs(p, 0, [1000, 1001]).join(' ');
    expect(args).toContain('--triton-ensemble legacy');
    expect(args).toContain(
      '--triton-ensemble-model llm --triton-preprocessing-model tok --triton-tensorrt-llm-model trt',
    );
    expect(args).toContain('--metrics-port 1001');
  });

  it('a name that is not a repository directory is refused, naming the field', () => {
    expect(problems(pool('triton', "{ worker: sim, triton: { ensemble_model: 'a/b' } }"))).toEqual([
      expect.stringMatching(/^pools\[0\]\.launch\.triton\.ensemble_model: must match pattern/),
    ]);
  });

  it('two roles on one model are refused, naming the second field', () => {
    expect(problems(pool('triton', '{ worker: sim, triton: { preprocessing_model: ensemble } }'))).toEqual([
      "pools[0].launch.triton.preprocessing_model: 'ensemble' is already the ensemble_model; each role needs its own model",
    ]);
  });

  it('Triton fields on a pool of another engine are refused, naming each', () => {
    expect(
      problems(
        pool('vllm', '{ worker: sim, sim: { triton_ensemble: legacy }, triton: { ensemble_model: e } }'),
      ),
    ).toEqual([
      "pools[0].launch.triton: names Triton models, but the pool's engine is 'vllm'",
      "pools[0].launch.sim.triton_ensemble: selects a Triton model repository, but the pool's engine is 'vllm'",
    ]);
  });

  it('an unknown repository variant is refused by the schema', () => {
    expect(problems(pool('triton', '{ worker: sim, sim: { triton_ensemble: v2 } }'))).toEqual([
      'pools[0].launch.sim.triton_ensemble: must be one of legacy, current',
    ]);
  });
});
