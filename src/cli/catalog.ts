/**
 * `llorch catalog add|show|verify|state|ls` and `llorch catalog keygen|sign|manifest` (minisign
 * format). A directory model (HF repository, TensorRT-LLM engine, Triton model repository) is
 * signed as its manifest: `sign DIR` writes `DIR.manifest.json` (the canonical manifest, which
 * the stock `minisign -V -m` verifies too) and `DIR.minisig`; `add ID --source DIR` catalogues it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';
import type { StateRequest } from '../client/types.js';
import { generateKeyPair, signPrehash, type MinisignKeyPair } from '../catalog/minisign.js';
import { hashArtifact, manifestSidecar, signatureSidecar } from '../catalog/artifact-verifier.js';
import { buildManifest, manifestBytes, manifestDigest } from '../catalog/model-manifest.js';

export async function catalogCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      source: { type: 'string' },
      digest: { type: 'string' },
      tag: { type: 'string', multiple: true },
      signature: { type: 'string' },
      out: { type: 'string' },
      key: { type: 'string' },
    },
  });
  const client = clientFor(values);
  const id = positionals[0];
  let out: unknown;
  switch (sub ?? '') {
    case 'add':
      if (id === undefined || values.source === undefined)
        throw new Error(
          'usage: llorch catalog add ID --source PATH [--digest sha256:…] [--signature FILE] [--tag T]',
        );
      out = await client.createCatalogModel({
        id,
        source: values.source,
        ...(values.digest === undefined ? {} : { digest: values.digest }),
        ...(values.tag ? { tags: values.tag } : {}),
        ...(values.signature === undefined ? {} : { signature: await readFile(values.signature, 'utf8') }),
      });
      break;
    case 'show':
      out = await client.getCatalogModel(id ?? '');
      break;
    case 'verify':
      out = await client.verifyCatalogModel(id ?? '');
      break;
    case 'state': {
      const state = positionals[1];
      if (id === undefined || state === undefined)
        throw new Error('usage: llorch catalog state ID Draft|Active|Canary|Deprecated|Retired');
      out = await client.setCatalogModelState(id, { state: state as StateRequest['state'] });
      break;
    }
    case 'ls':
      out = await client.listCatalogModels();
      break;
    case 'keygen': {
      // A local signing key: the public half goes into `catalog.trust_roots`.
      const prefix = values.out ?? 'llorch';
      const k = generateKeyPair();
      await writeFile(`${prefix}.pub`, k.publicKeyText);
      await writeFile(
        `${prefix}.key`,
        JSON.stringify({ secret: k.secretKeyDer.toString('base64'), key_id: k.keyId.toString('hex') }),
        { mode: 0o600 },
      );
      out = { public_key: `${prefix}.pub`, secret_key: `${prefix}.key` };
      break;
    }
    case 'sign': {
      if (id === undefined || values.key === undefined)
        throw new Error('usage: llorch catalog sign FILE|DIR --key llorch.key');
      const k = JSON.parse(await readFile(values.key, 'utf8')) as { secret: string; key_id: string };
      const pair: MinisignKeyPair = {
        publicKeyText: '',
        secretKeyDer: Buffer.from(k.secret, 'base64'),
        keyId: Buffer.from(k.key_id, 'hex'),
      };
      const path = id.replace(/\/+$/, '');
      // A directory is signed as its manifest: every file's path and SHA-256, canonical JSON.
      const a = await hashArtifact(path);
      if (a === undefined) throw new Error(`${path}: no model file, or a directory without files`);
      const comment = `${a.kind === 'directory' ? 'manifest' : 'file'}:${path}`;
      await writeFile(signatureSidecar(path), signPrehash(await a.message('ED'), pair, comment));
      if (a.manifest) await writeFile(manifestSidecar(path), manifestBytes(a.manifest));
      out = {
        signature: signatureSidecar(path),
        digest: a.digest,
        ...(a.manifest ? { manifest: manifestSidecar(path), files: a.manifest.files.length } : {}),
      };
      break;
    }
    case 'manifest': {
      // What a directory model's signature covers, and the digest the catalog will record.
      if (id === undefined) throw new Error('usage: llorch catalog manifest DIR');
      const manifest = await buildManifest(id.replace(/\/+$/, ''));
      out = { digest: manifestDigest(manifest), ...manifest };
      break;
    }
    default:
      throw new Error('usage: llorch catalog add|show|verify|state|ls|keygen|sign|manifest …');
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
