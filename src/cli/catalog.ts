/** `llorch catalog add|show|verify|state|ls` and `llorch catalog keygen|sign` (minisign format). */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { clientFor, CONNECTION_OPTIONS } from './api-call.js';
import type { StateRequest } from '../client/types.js';
import { generateKeyPair, signMinisign, type MinisignKeyPair } from '../catalog/minisign.js';

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
        throw new Error('usage: llorch catalog sign FILE --key llorch.key');
      const k = JSON.parse(await readFile(values.key, 'utf8')) as { secret: string; key_id: string };
      const pair: MinisignKeyPair = {
        publicKeyText: '',
        secretKeyDer: Buffer.from(k.secret, 'base64'),
        keyId: Buffer.from(k.key_id, 'hex'),
      };
      await writeFile(`${id}.minisig`, signMinisign(await readFile(id), pair, `file:${id}`));
      out = { signature: `${id}.minisig` };
      break;
    }
    default:
      throw new Error('usage: llorch catalog add|show|verify|state|ls|keygen|sign …');
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
