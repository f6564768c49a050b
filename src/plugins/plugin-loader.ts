/**
 * Loading a plugin (SPEC §10): every check that can refuse a module runs before any of its code
 * does — digest pin, manifest (embedded custom section), ABI major, hooks, params against the
 * manifest's schema, a declared memory maximum within the configured cap, and the catalog's
 * trust policy (a minisign signature by a trust root — `<module>.minisig` next to a file, the
 * `minisig` field of an artifact — required under `strict`).
 * The signature is checked over the very bytes that are compiled, so a file swapped between the
 * check and the compile cannot slip through.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import {
  signatureSidecar,
  type ArtifactVerifier,
  type VerificationReason,
} from '../catalog/artifact-verifier.js';
import { messageOf } from '../catalog/minisign.js';
import { contractsDir } from '../http/openapi.js';
import type { PluginHook, ResolvedPlugin } from './plugin-config.js';
import { wasmApi, type WasmModule } from './wasm-api.js';
import { customSections, MANIFEST_SECTION, memoryLimits, WASM_PAGE_BYTES } from './wasm-binary.js';

/** The ABI major this host speaks (docs/plugins.md). */
export const ABI_VERSION = 1;

/** A plugin's manifest (contracts/plugins/manifest.schema.json). */
export interface PluginManifest {
  readonly id: string;
  readonly version: string;
  readonly abi: number;
  readonly hooks: readonly PluginHook[];
  readonly description?: string;
  readonly params?: Record<string, unknown>;
}

/** A module that passed every load check, compiled, not yet instantiated. */
export interface LoadedPlugin {
  readonly config: ResolvedPlugin;
  readonly manifest: PluginManifest;
  readonly module: WasmModule;
  readonly sha256: string;
  readonly memoryMaxBytes: number;
  /** The outcome of the trust check (`signed`, or why not when the policy let it load anyway). */
  readonly trust: { readonly reason: VerificationReason; readonly keyId: string | undefined };
}

/** The catalog's trust policy as plugins are held to it (`catalog.trust_policy`, `catalog.trust_roots`). */
export interface PluginTrust {
  readonly policy: 'strict' | 'permissive';
  readonly verifier: ArtifactVerifier;
}

const TRUST_REASONS: Partial<Record<VerificationReason, string>> = {
  unsigned: 'missing signature',
  unknown_key: 'unknown key',
  bad_signature: 'bad signature',
  bad_trusted_comment: 'bad signature (trusted comment)',
  malformed_signature: 'malformed signature',
};

/** What refused a load: the pin, the trust policy, or the module itself (read, manifest, memory, params, start). */
export type PluginLoadCause = 'digest' | 'trust' | 'module';

/** A refused load: the message names the plugin and what was wrong. */
export class PluginLoadError extends Error {
  readonly kind: PluginLoadCause;
  constructor(message: string, cause: PluginLoadCause = 'module') {
    super(message);
    this.name = 'PluginLoadError';
    this.kind = cause;
  }
}

/** Reads one of contracts/plugins/*.json. */
export function pluginContract(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(contractsDir(), '..', 'plugins', name), 'utf8')) as Record<
    string,
    unknown
  >;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateManifest = ajv.compile<PluginManifest>(pluginContract('manifest.schema.json'));

/** `/a/b must be integer` style, with the field named as a path. */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined, root: string): string {
  return (errors ?? [])
    .map((e) => {
      const missing =
        e.keyword === 'required'
          ? `/${String((e.params as { missingProperty?: string }).missingProperty)}`
          : '';
      const extra =
        e.keyword === 'additionalProperties'
          ? `/${String((e.params as { additionalProperty?: string }).additionalProperty)}`
          : '';
      const path = `${root}${e.instancePath.replace(/\//g, '.').replace(/\.(\d+)(?=\.|$)/g, '[$1]')}${(missing || extra).replace('/', '.')}`;
      return `${path}: ${e.message ?? e.keyword}`;
    })
    .join('; ');
}

/** The manifest embedded in a module, validated. */
export function readManifest(bytes: Uint8Array, where: string): PluginManifest {
  const found = customSections(bytes, MANIFEST_SECTION);
  if (found.length !== 1)
    throw new PluginLoadError(
      `${where}: the module must carry exactly one '${MANIFEST_SECTION}' custom section (found ${found.length}); build it with \`llorch plugins build\``,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(found[0]));
  } catch (err) {
    throw new PluginLoadError(`${where}: manifest is not UTF-8 JSON: ${(err as Error).message}`);
  }
  if (!validateManifest(doc))
    throw new PluginLoadError(
      `${where}: invalid manifest: ${describeErrors(validateManifest.errors, 'manifest')}`,
    );
  return doc;
}

/**
 * Reads an artifact of the registry, for plugins loaded by digest (`plugins[].artifact`);
 * rejects when there is none (its message is shown).
 */
export type ArtifactSource = (tenant: string, id: string) => Promise<{ readonly content: unknown }>;

/** A module and its signature (minisign text, when there is one), as read from its source. */
interface ModuleBytes {
  readonly bytes: Uint8Array;
  readonly signature: string | undefined;
  /** Where the signature was looked for (refusal messages). */
  readonly signatureAt: string;
}

async function readModule(
  config: ResolvedPlugin,
  where: string,
  artifacts: ArtifactSource | undefined,
): Promise<ModuleBytes> {
  const source = config.source;
  if (source.kind === 'file') {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(source.path));
    } catch (err) {
      throw new PluginLoadError(`${where}: cannot read ${source.path}: ${(err as Error).message}`);
    }
    const sidecar = signatureSidecar(source.path);
    const signature = existsSync(sidecar)
      ? await readFile(sidecar, 'utf8').catch(() => undefined)
      : undefined;
    return { bytes, signature, signatureAt: sidecar };
  }
  const at = `artifact ${source.id} of tenant '${source.tenant}'`;
  if (artifacts === undefined) throw new PluginLoadError(`${where}: no artifact registry to read ${at} from`);
  let content: unknown;
  try {
    ({ content } = await artifacts(source.tenant, source.id));
  } catch (err) {
    throw new PluginLoadError(`${where}: cannot read ${at}: ${(err as Error).message}`);
  }
  const c = content as { wasm_base64?: unknown; minisig?: unknown } | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.wasm_base64 !== 'string' ||
    (c.minisig !== undefined && typeof c.minisig !== 'string')
  )
    throw new PluginLoadError(
      `${where}: ${at} is not a plugin module: its content must be {"wasm_base64": string, "minisig"?: string} (store one with \`llorch plugins publish\`)`,
    );
  return {
    bytes: new Uint8Array(Buffer.from(c.wasm_base64, 'base64')),
    signature: c.minisig,
    signatureAt: `the artifact's minisig field`,
  };
}

/** Runs every load check of one configured plugin; throws {@link PluginLoadError}. */
export async function loadPlugin(
  config: ResolvedPlugin,
  index: number,
  trust?: PluginTrust,
  artifacts?: ArtifactSource,
): Promise<LoadedPlugin> {
  const where = `plugins[${index}] '${config.id}'`;
  const read = await readModule(config, where, artifacts);
  const bytes = read.bytes;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (config.sha256 !== undefined && config.sha256 !== sha256)
    throw new PluginLoadError(
      `plugins[${index}].sha256: digest mismatch for '${config.id}': the module's sha256 is ${sha256}, the configuration pins ${config.sha256}`,
      'digest',
    );
  const verdict = await checkTrust(bytes, sha256, read, where, trust);
  let manifest: PluginManifest;
  try {
    manifest = readManifest(bytes, where);
  } catch (err) {
    if (err instanceof PluginLoadError) throw err;
    throw new PluginLoadError(`${where}: not a WebAssembly module: ${(err as Error).message}`);
  }
  if (manifest.id !== config.id)
    throw new PluginLoadError(
      `plugins[${index}].id: '${config.id}' but the module's manifest says '${manifest.id}'`,
    );
  if (manifest.abi !== ABI_VERSION)
    throw new PluginLoadError(
      `${where}: manifest abi ${manifest.abi} is not supported (this host speaks ABI ${ABI_VERSION})`,
    );
  for (const hook of config.hooks)
    if (!manifest.hooks.includes(hook))
      throw new PluginLoadError(
        `plugins[${index}].hooks: the plugin does not serve '${hook}' (manifest: ${manifest.hooks.join(', ')})`,
      );
  checkParams(config, manifest, index);
  const memoryMaxBytes = checkMemory(bytes, config, where);
  let module: WasmModule;
  try {
    module = await wasmApi.compile(bytes);
  } catch (err) {
    throw new PluginLoadError(`${where}: the module does not compile: ${(err as Error).message}`);
  }
  return { config, manifest, module, sha256, memoryMaxBytes, trust: verdict };
}

/** Describes a trust verdict that is not `signed` (`bad signature (key ABCD…)`). */
export function trustProblem(reason: VerificationReason, keyId: string | undefined): string {
  const what = TRUST_REASONS[reason] ?? reason;
  return keyId === undefined ? what : `${what} (key ${keyId})`;
}

async function checkTrust(
  bytes: Uint8Array,
  sha256: string,
  read: ModuleBytes,
  where: string,
  trust: PluginTrust | undefined,
): Promise<LoadedPlugin['trust']> {
  // No policy given (tests of the loader alone): treated as permissive and unsigned.
  if (trust === undefined) return { reason: 'unsigned', keyId: undefined };
  const text = read.signature;
  const v =
    text === undefined
      ? { ok: false, reason: 'unsigned' as const, keyId: undefined }
      : await trust.verifier.check(
          {
            kind: 'file',
            digest: `sha256:${sha256}`,
            message: async (alg) => messageOf(alg, Buffer.from(bytes)),
          },
          text,
        );
  if (v.ok || trust.policy === 'permissive') return { reason: v.reason, keyId: v.keyId };
  throw new PluginLoadError(
    `${where}: refused by the strict trust policy: ${trustProblem(v.reason, v.keyId)}${v.reason === 'unsigned' ? ` (no signature in ${read.signatureAt}; sign it with \`llorch catalog sign\`)` : ''}`,
    'trust',
  );
}

function checkParams(config: ResolvedPlugin, manifest: PluginManifest, index: number): void {
  const schema = manifest.params ?? { type: 'object', maxProperties: 0 };
  let validate;
  try {
    validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  } catch (err) {
    throw new PluginLoadError(
      `plugins[${index}] '${config.id}': the manifest's params schema is invalid: ${(err as Error).message}`,
    );
  }
  if (!validate(config.params))
    throw new PluginLoadError(
      `plugins[${index}] '${config.id}': params refused by the plugin's schema: ${describeErrors(validate.errors, `plugins[${index}].params`)}`,
    );
}

function checkMemory(bytes: Uint8Array, config: ResolvedPlugin, where: string): number {
  const memories = memoryLimits(bytes);
  if (memories.length !== 1)
    throw new PluginLoadError(`${where}: the module must have exactly one memory (has ${memories.length})`);
  const m = memories[0]!;
  const cap = `memory_max_bytes ${config.memoryMaxBytes}`;
  if (m.maximumPages === undefined)
    throw new PluginLoadError(
      `${where}: the module's memory declares no maximum; it must declare one within ${cap} (asc --maximumMemory)`,
    );
  const max = m.maximumPages * WASM_PAGE_BYTES;
  if (max > config.memoryMaxBytes)
    throw new PluginLoadError(
      `${where}: the module's memory maximum of ${max} bytes (${m.maximumPages} pages) exceeds ${cap}`,
    );
  return max;
}
