/**
 * The engine registry is the one list of engines: every place that names engines on its own
 * (the OpenAPI enums, the config schema, the metrics contract, the simulator's dialects and key
 * variables) must say the same as the registry, and each driver must be consistent with itself
 * (ports it asks for are ports it uses, fields it refuses are refused by name).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError } from '../../src/config/config-error.js';
import { parseConfig } from '../../src/config/load-config.js';
import type { ResolvedPool } from '../../src/config/resolved-config.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { ENGINES, type Engine } from '../../src/domain/types.js';
import type { EngineDriver, EngineField } from '../../src/engines/engine-driver.js';
import { llamacppDriver } from '../../src/engines/llamacpp/driver.js';
import { ENGINE_DRIVERS, driverOf } from '../../src/engines/registry.js';
import { tgiDriver } from '../../src/engines/tgi/driver.js';
import { tritonDriver } from '../../src/engines/triton/driver.js';
import { vllmDriver } from '../../src/engines/vllm/driver.js';
import type { components as ControlApi } from '../../src/http/generated/control.js';
import type { components as DataApi } from '../../src/http/generated/data.js';
import { LABEL_BUDGETS } from '../../src/metrics/contract.js';
import { ownFamilies } from '../../src/orchestrator/engine-metrics.js';
import { simArgs } from '../../src/pool/engine-launcher.js';
import { SIM_KEY_ENV } from '../../src/sim/engine-auth.js';
import { SIM_DIALECTS } from '../../src/sim/sim-dialect.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const sorted = (xs: readonly string[]) => [...xs].sort();
const registered = sorted(Object.keys(ENGINE_DRIVERS));

// Compile-time halves of the guard (tsc runs over test/): the registry's type demands a driver
// for every engine, filed under its own name, and the generated API types name the same engines.
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _controlEnum: Equal<ControlApi['schemas']['Engine'], Engine> = true;
const _dataEnum: Equal<DataApi['schemas']['Engine'], Engine> = true;
// @ts-expect-error a registry without a driver for every engine does not type-check
const _missing: { readonly [E in Engine]: EngineDriver<E> } = {
  llamacpp: llamacppDriver,
  vllm: vllmDriver,
  tgi: tgiDriver,
};
const _misfiled: { readonly [E in Engine]: EngineDriver<E> } = {
  llamacpp: llamacppDriver,
  vllm: vllmDriver,
  // @ts-expect-error a driver filed under another engine's name does not type-check
  tgi: tritonDriver,
  triton: tritonDriver,
};
const _registry: { readonly [E in Engine]: EngineDriver<E> } = ENGINE_DRIVERS;
void [_controlEnum, _dataEnum, _missing, _misfiled, _registry];

function pool(engine: Engine, extra = ''): ResolvedPool {
  const { config } = parseConfig(
    `
profile: dev
pools:
  - id: p
    engine: ${engine}
    model: { id: m, path: /models/m }
    ctx: 512
    devices: [0, 1]
${extra}
`,
    { baseDir: '/' },
  );
  const p = config.pools[0];
  if (!p) throw new Error('no pool');
  return p;
}

/** The problems of a pool config, or [] when it resolves. */
function problemsOf(engine: Engine, extra: string): readonly string[] {
  try {
    pool(engine, extra);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('the engine registry', () => {
  it('has one driver per engine of ENGINES, each filed under its own name', () => {
    expect(registered).toEqual(sorted(ENGINES));
    for (const e of ENGINES) {
      expect(driverOf(e).engine).toBe(e);
      expect(driverOf(e).displayName).not.toBe('');
    }
  });

  it('the OpenAPI Engine enums list exactly the registered engines', () => {
    for (const file of ['contracts/openapi/control.yaml', 'contracts/openapi/data.yaml']) {
      const doc = parse(read(file)) as { components: { schemas: { Engine: { enum: string[] } } } };
      expect(sorted(doc.components.schemas.Engine.enum), file).toEqual(registered);
    }
  });

  it('the config schema (built and published) takes exactly the registered engines', () => {
    type Schema = { properties: { pools: { items: { properties: { engine: { enum: string[] } } } } } };
    const built = configJsonSchema() as unknown as Schema;
    const published = JSON.parse(read('contracts/config.schema.json')) as Schema;
    for (const s of [built, published])
      expect(sorted(s.properties.pools.items.properties.engine.enum)).toEqual(registered);
  });

  it("the metrics contract has each driver's metric family and an engine label budget for every engine", () => {
    const contract = JSON.parse(read('contracts/metrics.json')) as {
      label_budgets: Record<string, number>;
      engine_passthrough: { families: Record<string, string> };
    };
    const families = contract.engine_passthrough.families;
    expect(sorted(Object.keys(families))).toEqual(registered);
    for (const e of ENGINES) expect(families[e], e).toBe(driverOf(e).metrics.family.source);
    expect(contract.label_budgets['engine']).toBeGreaterThanOrEqual(ENGINES.length);
    expect(LABEL_BUDGETS['engine']).toBeGreaterThanOrEqual(ENGINES.length);
  });

  it("the simulator speaks a dialect of every engine and reads each engine's own key variable", () => {
    expect(sorted(SIM_DIALECTS)).toEqual(registered);
    for (const e of ENGINES) expect(SIM_KEY_ENV[e], e).toBe(driverOf(e).apiKey?.env);
  });
});

describe('each driver', () => {
  it.each(ENGINES)('%s: asks for exactly the ports its command line uses, native and simulated', (e) => {
    const d = driverOf(e);
    const p = pool(e);
    const native = Array.from({ length: d.portCount.native }, (_, i) => 41_000 + i);
    const args = d.nativeArgs(p, native, 0).join(' ');
    for (const port of native) expect(args, `${e} native`).toMatch(new RegExp(`(^|[ =])${port}( |$)`));
    const sim = Array.from({ length: d.portCount.sim }, (_, i) => 42_000 + i);
    const sargs = simArgs({ ...p, launch: { ...p.launch, worker: 'sim' } }, 0, sim).join(' ');
    for (const port of sim) expect(sargs, `${e} sim`).toMatch(new RegExp(`(^|[ =])${port}( |$)`));
    // A port flag left without one of the ports asked for falls back to 0: a port count too small.
    for (const line of [args, sargs]) expect(line, e).not.toMatch(/port[= ]0( |$)/);
  });

  it.each(ENGINES)('%s: its adapter speaks for its engine', async (e) => {
    const adapter = driverOf(e).createAdapter(pool(e), { base: 'http://127.0.0.1:1' }, undefined);
    expect(adapter.engine).toBe(e);
    await adapter.close();
  });

  const FIELD_YAML: Readonly<Record<EngineField, string>> = {
    tensor_split: '    tensor_split: [1, 1]',
    'launch.gpu_memory_utilization': '    launch: { gpu_memory_utilization: 0.5 }',
    'launch.embeddings': '    launch: { embeddings: { pooling: mean } }',
  };
  const cases = ENGINES.flatMap((e) =>
    (Object.keys(FIELD_YAML) as EngineField[]).map((f) => [e, f] as const),
  );
  it.each(cases)('%s: %s is taken where the driver honours it, else refused by name', (e, field) => {
    const problems = problemsOf(e, FIELD_YAML[field]);
    const support = driverOf(e).fields[field];
    if ('honoured' in support) expect(problems).toEqual([]);
    else {
      expect(problems).toHaveLength(1);
      expect(problems[0]?.startsWith(`pools[0].${field}: `)).toBe(true);
      expect(problems[0]).toContain(`engine '${e}'`);
      expect(problems[0]).toContain(support.refused);
    }
  });

  it('every engine-specific field is honoured by some engine', () => {
    for (const field of Object.keys(FIELD_YAML) as EngineField[])
      expect(
        ENGINES.some((e) => 'honoured' in driverOf(e).fields[field]),
        field,
      ).toBe(true);
  });

  it.each(ENGINES)('%s: re-exports its own metric families only', (e) => {
    const name = driverOf(e).metrics.family.source.replace(/^\^/, '').replace(/\\/g, '');
    const scrape = [
      `# HELP ${name}x_total own`,
      `# TYPE ${name}x_total counter`,
      `${name}x_total 3`,
      '# TYPE process_cpu_seconds_total counter',
      'process_cpu_seconds_total 1.5',
      'python_gc_objects_collected_total{generation="0"} 7',
    ].join('\n');
    expect(ownFamilies(e, scrape).split('\n')).toEqual([
      `# HELP ${name}x_total own`,
      `# TYPE ${name}x_total counter`,
      `${name}x_total 3`,
    ]);
  });
});
