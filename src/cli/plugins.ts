/**
 * `llorch plugins build|test|publish`: build an AssemblyScript policy plugin, run one over
 * recorded snapshots, store one in the artifact registry to be loaded by digest.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { signatureSidecar } from '../catalog/artifact-verifier.js';
import { buildPlugin, testPlugin } from '../plugins/plugin-build.js';
import { readManifest } from '../plugins/plugin-loader.js';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';

const USAGE =
  'usage: llorch plugins build DIR [--out FILE] [--memory-max-bytes N]\n' +
  '       llorch plugins test MODULE --snapshots FILE [--budget-ms N]   (FILE: a JSON array or one snapshot per line)\n' +
  '       llorch plugins publish MODULE [--url URL] [--api-key KEY]   (stores MODULE and MODULE.minisig as an artifact; prints its id)';

/** A JSON array of snapshots, or JSON Lines. */
export function parseSnapshots(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
  return trimmed
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}

export async function pluginsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'memory-max-bytes': { type: 'string' },
      snapshots: { type: 'string' },
      'budget-ms': { type: 'string', default: '1' },
      ...CONNECTION_OPTIONS,
    },
  });
  const target = positionals[0];
  if (target === undefined) throw new Error(USAGE);
  switch (sub ?? '') {
    case 'build': {
      const max = values['memory-max-bytes'];
      const r = await buildPlugin(target, {
        ...(values.out === undefined ? {} : { out: values.out }),
        ...(max === undefined ? {} : { memoryMaxBytes: Number(max) }),
      });
      process.stdout.write(
        `${r.path}: ${r.manifest.id} ${r.manifest.version} (ABI ${r.manifest.abi}), ${r.bytes} bytes, memory maximum ${r.maximumPages} pages\n`,
      );
      return;
    }
    case 'test': {
      if (values.snapshots === undefined) throw new Error(USAGE);
      const budget = Number(values['budget-ms']);
      if (!(budget > 0)) throw new Error('--budget-ms must be a positive number');
      const snapshots = parseSnapshots(await readFile(values.snapshots, 'utf8'));
      const { outcomes } = await testPlugin(target, snapshots, budget);
      for (const o of outcomes) process.stdout.write(`${JSON.stringify(o)}\n`);
      return;
    }
    case 'publish': {
      const ref = await publishPlugin(target, values);
      process.stdout.write(`${ref}\n`);
      return;
    }
    default:
      throw new Error(USAGE);
  }
}

/**
 * Stores a built module (and its minisign signature next to it, when there is one) in the
 * artifact registry of the key's tenant, as the content `plugins[].artifact` loads:
 * `{wasm_base64, minisig?}`, kind `other`, tagged `plugin` and `plugin:<id>@<version>`.
 * Returns the artifact id.
 */
export async function publishPlugin(
  modulePath: string,
  connection: { url: string; 'api-key'?: string | undefined },
): Promise<string> {
  const bytes = await readFile(modulePath);
  const manifest = readManifest(new Uint8Array(bytes), basename(modulePath));
  const sidecar = signatureSidecar(modulePath);
  const minisig = existsSync(sidecar) ? await readFile(sidecar, 'utf8') : undefined;
  const ref = await clientFor(connection).createArtifact({
    kind: 'other',
    content: { wasm_base64: bytes.toString('base64'), ...(minisig === undefined ? {} : { minisig }) },
    tags: ['plugin', `plugin:${manifest.id}@${manifest.version}`],
    metadata: {
      plugin: manifest.id,
      version: manifest.version,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      signed: minisig !== undefined,
    },
  });
  return ref.id;
}
