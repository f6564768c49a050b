/**
 * The SDK's snapshot classes and contract constants are generated from the plugin contracts the
 * host validates against (scripts/gen-plugin-sdk.ts → sdk/assembly/generated/): they declare every
 * property of each snapshot schema, a snapshot built from the schema alone round-trips through the
 * compiled SDK unchanged, and a schema edited without `npm run gen` fails `npm run gen:check`.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPlugin } from '../../src/plugins/plugin-build.js';
import { pluginContract } from '../../src/plugins/plugin-loader.js';
import { HOOK_NUMBERS } from '../../src/plugins/plugin-runtime.js';
import { PluginWorker } from '../../src/plugins/plugin-worker.js';
import { wasmApi } from '../../src/plugins/wasm-api.js';
import {
  SDK_GENERATED_DIR,
  generatePluginSdk,
  readPluginContracts,
  renderPluginSdk,
  type SchemaNode,
} from '../../scripts/gen-plugin-sdk.js';

const root = resolve(import.meta.dirname, '../..');
const HOOKS = ['admission', 'placement'] as const;
const SDK_KEYWORDS = ['x-sdk-class', 'x-sdk-extend', 'x-sdk-type'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function deref(doc: SchemaNode, node: SchemaNode): SchemaNode {
  let n = node;
  while (n.$ref !== undefined) {
    let target: unknown = doc;
    for (const part of n.$ref.slice(2).split('/')) target = (target as Record<string, unknown>)[part];
    n = target as SchemaNode;
  }
  return n;
}

/**
 * A value for `node` built from the schema alone: every property (or only the required ones),
 * distinct numbers, strings that need escaping, non-default enum members and booleans.
 */
function sampleOf(doc: SchemaNode, raw: SchemaNode, optional: boolean, counter = { n: 0 }): Json {
  const node = deref(doc, raw);
  const n = ++counter.n;
  if (node.const !== undefined) return node.const as Json;
  if (node.enum) return node.enum[node.enum.length - 1] as Json;
  const type = typeof node.type === 'string' ? node.type : node.properties ? 'object' : '';
  switch (type) {
    case 'string':
      return `s${n} "ü" \\ ${'\u00e9'}`;
    case 'integer':
      return (node.minimum ?? 0) + n;
    case 'number':
      return n + 0.25;
    case 'boolean':
      return true;
    case 'array': {
      const items = node.items ?? {};
      return [sampleOf(doc, items, optional, counter), sampleOf(doc, items, optional, counter)];
    }
    case 'object': {
      if (node.properties) {
        const required = new Set(node.required ?? []);
        const out: Record<string, Json> = {};
        for (const [k, v] of Object.entries(node.properties))
          if (optional || required.has(k)) out[k] = sampleOf(doc, v, optional, counter);
        return out;
      }
      if (typeof node.additionalProperties === 'object')
        return {
          k1: sampleOf(doc, node.additionalProperties, optional, counter),
          'k-2': sampleOf(doc, node.additionalProperties, optional, counter),
        };
      return { mode: 'echo', nested: { a: [1, 2.5, 'x', true, null], b: { c: -3 } } };
    }
    default:
      throw new Error(`no sample for ${JSON.stringify(node)}`);
  }
}

/** Every object of a schema with its properties, keyed by the class the SDK gives it. */
function objectsOf(doc: SchemaNode, derived: string, raw: SchemaNode, out: Map<string, string[]>): void {
  const node = deref(doc, raw);
  if (node.properties) {
    const name = (node['x-sdk-class'] ?? derived) + (node['x-sdk-extend'] !== undefined ? 'Fields' : '');
    out.set(name, Object.keys(node.properties));
    for (const [k, v] of Object.entries(node.properties)) objectsOf(doc, `${derived}${k}`, v, out);
  }
  if (node.items) objectsOf(doc, `${derived}Item`, node.items, out);
  if (typeof node.additionalProperties === 'object')
    objectsOf(doc, `${derived}Entry`, node.additionalProperties, out);
}

/** Field names per class, as the generated AssemblyScript declares them. */
function declaredFields(sources: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const src of sources)
    for (const m of src.matchAll(/^export class (\w+) \{\n([\s\S]*?)^\}/gm))
      out.set(
        m[1]!,
        [...m[2]!.matchAll(/^ {2}(\w+): [^=;()]+ = /gm)].map((f) => f[1]!),
      );
  return out;
}

async function generatedSources(): Promise<string[]> {
  const files = await generatePluginSdk(root);
  return Promise.all(files.map((f) => readFile(join(root, f.path), 'utf8')));
}

describe('generated SDK sources', () => {
  it('are what the generator renders from the contracts now (what `npm run gen:check` checks)', async () => {
    const files = await generatePluginSdk(root);
    expect(files.map((f) => f.path).sort()).toEqual(
      expect.arrayContaining([
        `${SDK_GENERATED_DIR}/admission-snapshot.ts`,
        `${SDK_GENERATED_DIR}/placement-snapshot.ts`,
      ]),
    );
    for (const f of files) expect(await readFile(join(root, f.path), 'utf8'), f.path).toBe(f.content);
  });

  it.each(HOOKS)('declare every property of the %s snapshot schema, recursively', async (hook) => {
    const doc = pluginContract(`${hook}-snapshot.schema.json`) as SchemaNode;
    const expected = new Map<string, string[]>();
    objectsOf(doc, `${hook[0]!.toUpperCase()}${hook.slice(1)}Snapshot`, doc, expected);
    const declared = declaredFields(await generatedSources());
    expect(expected.size).toBeGreaterThan(3);
    for (const [name, props] of expected) expect(declared.get(name), name).toEqual(props);
  });

  it('carry the decision schemas’ kinds, refusal codes and priorities as constants', async () => {
    const sources = (await generatedSources()).join('\n');
    const admission = pluginContract('admission-decision.schema.json') as { oneOf: SchemaNode[] };
    const placement = pluginContract('placement-decision.schema.json') as { oneOf: SchemaNode[] };
    const constants = (cls: string): string[] => {
      const body = new RegExp(`export class ${cls} \\{([\\s\\S]*?)\\n\\}`).exec(sources)?.[1] ?? '';
      return [...body.matchAll(/static readonly \w+: string = '([^']*)'/g)].map((m) => m[1]!);
    };
    expect(constants('AdmissionDecisionKind')).toEqual(
      admission.oneOf.map((v) => v.properties!['decision']!.const),
    );
    expect(constants('PlacementDecisionKind')).toEqual(
      placement.oneOf.map((v) => v.properties!['decision']!.const),
    );
    expect(constants('RefusalCode')).toEqual(admission.oneOf[1]!.properties!['code']!.enum);
    expect(constants('Priority')).toEqual(admission.oneOf[2]!.properties!['priority']!.enum);
  });

  it('the annotations are keywords a strict validator accepts once declared; the host ignores them', () => {
    for (const name of [
      'admission-snapshot',
      'placement-snapshot',
      'admission-decision',
      'placement-decision',
    ]) {
      const schema = pluginContract(`${name}.schema.json`);
      expect(JSON.stringify(schema)).toContain('"x-sdk-');
      // strictRequired flags the decisions' `anyOf: [{required}]`, which is not about these keywords.
      new Ajv({ strict: true, strictRequired: false, keywords: SDK_KEYWORDS }).compile(schema);
      expect(() => new Ajv({ strict: true, strictRequired: false }).compile(schema)).toThrow(
        /unknown keyword/,
      );
      new Ajv({ allErrors: true, strict: false }).compile(schema);
    }
  });
});

describe('the generator', () => {
  let contracts: Map<string, SchemaNode>;
  beforeAll(async () => {
    contracts = await readPluginContracts(join(root, 'contracts/plugins'));
  });
  const edited = (name: string, edit: (doc: Record<string, unknown>) => void): Map<string, SchemaNode> => {
    const copy = new Map([...contracts].map(([k, v]) => [k, structuredClone(v)]));
    edit(copy.get(name) as unknown as Record<string, unknown>);
    return copy;
  };
  const taskOf = (
    doc: Record<string, unknown>,
  ): { properties: Record<string, unknown>; required: string[] } =>
    (doc['properties'] as Record<string, { properties: Record<string, unknown>; required: string[] }>)[
      'task'
    ]!;

  it('picks up a new field: a nested class, read and written, under a derived name', async () => {
    const files = await renderPluginSdk(
      edited('placement-snapshot', (doc) => {
        (doc['properties'] as Record<string, unknown>)['region'] = {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string' }, zones: { type: 'array', items: { type: 'string' } } },
        };
      }),
    );
    const placement = files.find((f) => f.path.endsWith('/placement-snapshot.ts'))!.content;
    expect(placement).toContain('export class PlacementSnapshotRegion {');
    expect(placement).toContain('region: PlacementSnapshotRegion | null = null;');
    expect(placement).toContain("o.getStrings('zones')");
    expect(placement).toMatch(/if \(v != null\) o\.set\('region', v\.toJson\(\)\);/);
  });

  it('refuses one class name for two different shapes', async () => {
    await expect(
      renderPluginSdk(
        edited('placement-snapshot', (doc) => {
          taskOf(doc).properties['extra'] = { type: 'string' };
        }),
      ),
    ).rejects.toThrow(/class TaskInfo is declared elsewhere with other members/);
  });

  it('`npm run gen:check` fails when a schema changes without regenerating, naming the stale file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-sdk-gen-'));
    try {
      await cp(join(root, 'contracts/plugins'), dir, { recursive: true });
      const file = join(dir, 'admission-snapshot.schema.json');
      const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      taskOf(doc).properties['region'] = { type: 'string' };
      await writeFile(file, JSON.stringify(doc, null, 2));
      const placementFile = join(dir, 'placement-snapshot.schema.json');
      const placement = JSON.parse(await readFile(placementFile, 'utf8')) as Record<string, unknown>;
      taskOf(placement).properties['region'] = { type: 'string' };
      await writeFile(placementFile, JSON.stringify(placement, null, 2));
      const stale = spawnSync('npx', ['tsx', 'scripts/gen.ts', '--check'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, LLORCH_GEN_PLUGIN_CONTRACTS: dir },
      });
      expect(stale.status).toBe(1);
      expect(stale.stderr).toContain(`stale generated file: ${SDK_GENERATED_DIR}/shared.ts`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('a snapshot built from the schema alone round-trips through the compiled SDK', () => {
  const workers: PluginWorker[] = [];
  let echoPath = '';
  let out = '';
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'llorch-sdk-codegen-'));
    echoPath = (await buildPlugin('sdk/fixtures/snapshot-echo', { out: join(out, 'echo.wasm') })).path;
  }, 120_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
    await rm(out, { recursive: true, force: true });
  });

  async function echo(hook: (typeof HOOKS)[number], snapshot: Json): Promise<unknown> {
    const w = await PluginWorker.start(
      await wasmApi.compile(new Uint8Array(await readFile(echoPath))),
      'echo',
    );
    workers.push(w);
    const r = await w.call(HOOK_NUMBERS[hook], JSON.stringify(snapshot), 10_000);
    if (r.kind !== 'result') throw new Error(`call ended: ${JSON.stringify(r)}`);
    const decision = JSON.parse(r.output) as { message?: string; allow?: string[] };
    return JSON.parse(hook === 'admission' ? decision.message! : decision.allow![0]!) as unknown;
  }

  it.each(
    HOOKS.flatMap((hook) => [[hook, 'every property'] as const, [hook, 'only the required ones'] as const]),
  )('%s snapshot with %s', async (hook, which) => {
    const doc = pluginContract(`${hook}-snapshot.schema.json`) as SchemaNode;
    const snapshot = sampleOf(doc, doc, which === 'every property');
    const validate = new Ajv({ allErrors: true, strict: false }).compile(doc);
    expect(validate(snapshot), JSON.stringify(validate.errors)).toBe(true);
    expect(await echo(hook, snapshot)).toEqual(snapshot);
  });
});
