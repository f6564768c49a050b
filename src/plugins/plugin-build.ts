/**
 * `llorch plugins build` and `llorch plugins test`: compile an AssemblyScript plugin with a
 * declared memory maximum and its manifest embedded, and run a module over recorded snapshots
 * exactly as the host would (worker thread, budget, decision schema).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { PLUGIN_DEFAULTS } from './plugin-config.js';
import { describeErrors, pluginContract, readManifest, type PluginManifest } from './plugin-loader.js';
import { HOOK_NUMBERS } from './plugin-runtime.js';
import { PluginWorker } from './plugin-worker.js';
import { MANIFEST_SECTION, WASM_PAGE_BYTES, withCustomSection } from './wasm-binary.js';
import { wasmApi } from './wasm-api.js';

const ASC_MODULE: string = 'assemblyscript/asc';

interface Asc {
  main(
    argv: string[],
    options?: { stdout?: unknown; stderr?: unknown },
  ): Promise<{ error: Error | null; stderr: { toString(): string } }>;
}

export interface BuildOptions {
  /** Output module; default `<dir>/build/<id>.wasm`. */
  readonly out?: string;
  /** The module's declared memory maximum (rounded down to whole 64 KiB pages). */
  readonly memoryMaxBytes?: number;
}

export interface BuildResult {
  readonly path: string;
  readonly manifest: PluginManifest;
  readonly bytes: number;
  readonly maximumPages: number;
}

/**
 * Compiles `<dir>/assembly/index.ts` with asc (incremental GC, -O3, `--maximumMemory` so the module
 * declares a maximum) and embeds `<dir>/plugin.json` as the `llorch.manifest` custom section.
 */
export async function buildPlugin(dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const root = resolve(dir);
  const manifestText = await readFile(join(root, 'plugin.json'), 'utf8').catch((err: unknown) => {
    throw new Error(`${join(root, 'plugin.json')}: ${(err as Error).message}`);
  });
  const manifestBytes = new TextEncoder().encode(JSON.stringify(JSON.parse(manifestText)));
  const maximumPages = Math.floor((opts.memoryMaxBytes ?? PLUGIN_DEFAULTS.memoryMaxBytes) / WASM_PAGE_BYTES);
  if (maximumPages < 1) throw new Error('the memory maximum must be at least one 64 KiB page');
  let asc: Asc;
  try {
    // A specifier the compiler does not resolve: asc's type declarations carry AssemblyScript's
    // own globals (its `Array#at` returns `T`), which would leak into this program's types.
    asc = (await import(ASC_MODULE)) as Asc;
  } catch {
    throw new Error('assemblyscript is not installed: `npm install --save-dev assemblyscript`');
  }
  const stageDir = await mkdtemp(join(tmpdir(), 'llorch-asc-'));
  const stage = join(stageDir, 'module.wasm');
  const errors: string[] = [];
  const sink = { write: (chunk: string | Uint8Array) => void errors.push(String(chunk)) };
  let wasm: Uint8Array;
  try {
    const result = await asc.main(
      [
        join(root, 'assembly', 'index.ts'),
        '--outFile',
        stage,
        '--runtime',
        'incremental',
        '--optimizeLevel',
        '3',
        '--noColors',
        '--initialMemory',
        '1',
        '--maximumMemory',
        String(maximumPages),
      ],
      { stdout: sink, stderr: sink },
    );
    if (result.error) throw new Error(`asc failed: ${result.error.message}\n${errors.join('')}`);
    wasm = new Uint8Array(await readFile(stage));
  } finally {
    await rm(stageDir, { recursive: true, force: true });
  }
  const bytes = withCustomSection(wasm, MANIFEST_SECTION, manifestBytes);
  const manifest = readManifest(bytes, join(root, 'plugin.json'));
  const out = resolve(opts.out ?? join(root, 'build', `${manifest.id}.wasm`));
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, bytes);
  return { path: out, manifest, bytes: bytes.length, maximumPages };
}

/** One snapshot's outcome under `llorch plugins test`. */
export type TestOutcome =
  | { readonly decision: unknown; readonly latency_ms: number }
  | { readonly fallback: 'timeout' | 'trap' | 'malformed'; readonly detail: string };

const ajv = new Ajv({ allErrors: true, strict: false });
/** Each hook's snapshot and decision validators, from the contracts the host checks against. */
const CONTRACTS = {
  admission: {
    snapshot: ajv.compile(pluginContract('admission-snapshot.schema.json')),
    decision: ajv.compile(pluginContract('admission-decision.schema.json')),
  },
  placement: {
    snapshot: ajv.compile(pluginContract('placement-snapshot.schema.json')),
    decision: ajv.compile(pluginContract('placement-decision.schema.json')),
  },
} as const;

/** The hook a recorded snapshot is for (its `hook` field; admission when absent). */
function hookOf(snapshot: unknown): keyof typeof CONTRACTS {
  const hook = (snapshot as { hook?: unknown } | null)?.hook;
  return hook === 'placement' ? 'placement' : 'admission';
}

/**
 * Runs a built plugin over recorded snapshots (each checked against its hook's snapshot schema
 * first), the way the host calls it: one worker, the budget plus the host allowance, a fresh
 * worker after an overrun or trap. Each outcome is the decision (checked against the hook's
 * decision schema) or the fallback the host would take.
 */
export async function testPlugin(
  modulePath: string,
  snapshots: readonly unknown[],
  budgetMs: number,
): Promise<{ manifest: PluginManifest; outcomes: TestOutcome[] }> {
  const bytes = new Uint8Array(await readFile(modulePath));
  const manifest = readManifest(bytes, basename(modulePath));
  const module = await wasmApi.compile(bytes);
  let worker = await PluginWorker.start(module, manifest.id);
  const outcomes: TestOutcome[] = [];
  try {
    for (const [i, snapshot] of snapshots.entries()) {
      const hook = hookOf(snapshot);
      const { snapshot: validateSnapshot, decision: validateDecision } = CONTRACTS[hook];
      if (!validateSnapshot(snapshot))
        throw new Error(`snapshot ${i}: ${describeErrors(validateSnapshot.errors, `snapshots[${i}]`)}`);
      const t0 = performance.now();
      const r = await worker.call(
        HOOK_NUMBERS[hook],
        JSON.stringify(snapshot),
        budgetMs + worker.allowanceMs,
      );
      const latency = Math.round((performance.now() - t0) * 1000) / 1000;
      if (r.kind !== 'result') {
        outcomes.push({
          fallback: r.kind,
          detail: r.kind === 'trap' ? r.message : `no decision within ${budgetMs} ms`,
        });
        await worker.terminate();
        worker = await PluginWorker.start(module, manifest.id);
        continue;
      }
      let decision: unknown;
      try {
        decision = JSON.parse(r.output);
      } catch {
        outcomes.push({ fallback: 'malformed', detail: 'the decision is not JSON' });
        continue;
      }
      if (!validateDecision(decision))
        outcomes.push({ fallback: 'malformed', detail: describeErrors(validateDecision.errors, 'decision') });
      else outcomes.push({ decision, latency_ms: latency });
    }
  } finally {
    await worker.terminate();
  }
  return { manifest, outcomes };
}
