/** `llorch catalog add|show|verify|state|ls` and `llorch catalog keygen|sign` (minisign format). */
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { generateKeyPair, signMinisign, type MinisignKeyPair } from '../catalog/minisign.js';

export async function catalogCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      url: { type: 'string', default: process.env['LLORCH_URL'] ?? 'http://127.0.0.1:8080' },
      'api-key': { type: 'string', default: process.env['LLORCH_API_KEY'] },
      source: { type: 'string' },
      digest: { type: 'string' },
      tag: { type: 'string', multiple: true },
      signature: { type: 'string' },
      out: { type: 'string' },
      key: { type: 'string' },
    },
  });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (values['api-key'] !== undefined) headers['authorization'] = `Bearer ${values['api-key']}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${values.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${res.status} ${String(json['code'])}: ${String(json['message'])}`);
    return json;
  };
  const id = positionals[0];
  let out: unknown;
  switch (sub ?? '') {
    case 'add':
      if (id === undefined || values.source === undefined)
        throw new Error(
          'usage: llorch catalog add ID --source PATH [--digest sha256:…] [--signature FILE] [--tag T]',
        );
      out = await call('POST', '/v1/catalog/models', {
        id,
        source: values.source,
        ...(values.digest === undefined ? {} : { digest: values.digest }),
        ...(values.tag ? { tags: values.tag } : {}),
        ...(values.signature === undefined ? {} : { signature: await readFile(values.signature, 'utf8') }),
      });
      break;
    case 'show':
      out = await call('GET', `/v1/catalog/models/${encodeURIComponent(id ?? '')}`);
      break;
    case 'verify':
      out = await call('POST', `/v1/catalog/models/${encodeURIComponent(id ?? '')}/verify`, {});
      break;
    case 'state': {
      const state = positionals[1];
      if (id === undefined || state === undefined)
        throw new Error('usage: llorch catalog state ID Draft|Active|Canary|Deprecated|Retired');
      out = await call('POST', `/v1/catalog/models/${encodeURIComponent(id)}/state`, { state });
      break;
    }
    case 'ls':
      out = await call('GET', '/v1/catalog/models');
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
