/**
 * Deliberately small or broken plugin modules, written in WAT and compiled at test time (wabt):
 * a constant decision, an infinite loop, a trap, a memory without maximum or above a cap.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { MANIFEST_SECTION, withCustomSection } from '../../src/plugins/wasm-binary.js';

export interface FixtureManifest {
  id: string;
  version?: string;
  abi?: number;
  hooks?: string[];
  params?: Record<string, unknown>;
}

/** WAT string literal of arbitrary bytes. */
function watBytes(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
}

export interface WatPlugin {
  /** The body of `llorch_decide` (params: hook, ptr, len; result i64). Default: the `decision`. */
  decide?: string;
  /** A constant decision returned from a data segment. */
  decision?: string;
  /** The memory declaration's limits. Default `1 1`. */
  memory?: string;
  /** Imports (they precede every definition). */
  imports?: string;
  /** Extra module fields. */
  extra?: string;
}

export function wat(p: WatPlugin): string {
  const decision = p.decision ?? '{"decision":"accept"}';
  const body =
    p.decide ??
    `(i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const ${new TextEncoder().encode(decision).length}))`;
  return `(module
  ${p.imports ?? ''}
  (memory (export "memory") ${p.memory ?? '1 1'})
  (data (i32.const 16) "${watBytes(decision)}")
  (func (export "llorch_abi_version") (result i32) (i32.const 1))
  (func (export "llorch_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "llorch_decide") (param i32 i32 i32) (result i64) ${body})
  ${p.extra ?? ''})`;
}

/** WAT → wasm with the manifest embedded, as `llorch plugins build` does. */
export async function compileWat(source: string, manifest: FixtureManifest | undefined): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('fixture.wat', source);
  try {
    mod.resolveNames();
    mod.validate();
    const bytes = mod.toBinary({}).buffer;
    if (!manifest) return bytes;
    const full = { version: '1.0.0', abi: 1, hooks: ['admission'], ...manifest };
    return withCustomSection(bytes, MANIFEST_SECTION, new TextEncoder().encode(JSON.stringify(full)));
  } finally {
    mod.destroy();
  }
}

/** Writes a fixture module to a fresh directory; its path. */
export async function writeFixture(
  name: string,
  p: WatPlugin,
  manifest: FixtureManifest | null = { id: name },
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'llorch-plugin-'));
  const path = join(dir, `${name}.wasm`);
  await writeFile(path, await compileWat(wat(p), manifest ?? undefined));
  return path;
}

/** Bodies of `llorch_decide` that misbehave. */
export const DECIDE = {
  infiniteLoop: '(loop $l (br $l)) (i64.const 0)',
  trap: 'unreachable',
  /** Grows memory by a page per call until the declared maximum refuses, then reads past it. */
  memoryHungry:
    '(drop (memory.grow (i32.const 1))) (drop (i32.load (i32.mul (memory.size) (i32.const 65536)))) (i64.const 0)',
  /** A pointer far outside memory. */
  outOfBounds: '(i64.const 0x7fff000000000010)',
} as const;
