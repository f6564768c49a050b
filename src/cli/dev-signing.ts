/**
 * The dev profile signs its generated model with a key generated on this machine, so strict
 * catalog verification runs in development exactly as in production.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateKeyPair, signMinisign, type MinisignKeyPair } from '../catalog/minisign.js';
import { devKeyPaths } from './dev-config.js';

async function devKey(dataDir: string): Promise<MinisignKeyPair> {
  const paths = devKeyPaths(dataDir);
  if (existsSync(paths.key) && existsSync(paths.pub)) {
    const k = JSON.parse(await readFile(paths.key, 'utf8')) as { secret: string; key_id: string };
    return {
      publicKeyText: await readFile(paths.pub, 'utf8'),
      secretKeyDer: Buffer.from(k.secret, 'base64'),
      keyId: Buffer.from(k.key_id, 'hex'),
    };
  }
  const k = generateKeyPair('llama-orch dev');
  await mkdir(dirname(paths.key), { recursive: true });
  await writeFile(
    paths.key,
    JSON.stringify({ secret: k.secretKeyDer.toString('base64'), key_id: k.keyId.toString('hex') }),
    { mode: 0o600 },
  );
  await writeFile(paths.pub, k.publicKeyText);
  return k;
}

/** Makes sure the dev key exists; signs `modelPath` (writing `<model>.minisig`) when given. */
export async function ensureDevSigning(dataDir: string, modelPath?: string): Promise<void> {
  const key = await devKey(dataDir);
  if (modelPath !== undefined)
    await writeFile(
      `${modelPath}.minisig`,
      signMinisign(await readFile(modelPath), key, 'file:tiny.gguf (llama-orch dev)'),
    );
}
