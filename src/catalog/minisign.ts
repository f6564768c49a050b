/**
 * Minisign signatures (https://jedisct1.github.io/minisign/): Ed25519 over the file (`Ed`) or
 * over its BLAKE2b-512 hash (`ED`, the default of minisign ≥ 0.8), with a key id and a trusted
 * comment covered by a global signature. Chosen because it is small, established for release
 * artifacts, verifiable offline with a 56-character public key, and needs nothing beyond
 * Node's crypto. Signing here serves the dev profile's local key and tests.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface MinisignPublicKey {
  /** 8-byte key id, hex (as minisign prints it, little-endian bytes reversed). */
  readonly keyId: string;
  readonly key: KeyObject;
}

export interface MinisignSignature {
  readonly algorithm: 'Ed' | 'ED';
  readonly keyId: string;
  readonly signature: Buffer;
  readonly trustedComment: string;
  readonly globalSignature: Buffer;
}

const keyIdHex = (b: Buffer) => Buffer.from(b).reverse().toString('hex').toUpperCase();

/** A public key as minisign writes it: base64 of `Ed` + key id (8) + Ed25519 key (32); comment lines ignored. */
export function parsePublicKey(text: string): MinisignPublicKey {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('untrusted comment:'));
  const raw = Buffer.from(line ?? '', 'base64');
  if (raw.length !== 42 || raw.subarray(0, 2).toString('latin1') !== 'Ed')
    throw new Error('not a minisign public key');
  return {
    keyId: keyIdHex(raw.subarray(2, 10)),
    key: createPublicKey({
      key: Buffer.concat([SPKI_ED25519, raw.subarray(10)]),
      format: 'der',
      type: 'spki',
    }),
  };
}

export function parseSignature(text: string): MinisignSignature {
  const lines = text.split('\n').map((l) => l.trimEnd());
  const sigLine = lines[1];
  const trusted = lines[2];
  const globalLine = lines[3];
  if (
    !lines[0]?.startsWith('untrusted comment:') ||
    !trusted?.startsWith('trusted comment: ') ||
    sigLine === undefined ||
    globalLine === undefined
  )
    throw new Error('not a minisign signature');
  const raw = Buffer.from(sigLine, 'base64');
  const algorithm = raw.subarray(0, 2).toString('latin1');
  if (raw.length !== 74 || (algorithm !== 'Ed' && algorithm !== 'ED'))
    throw new Error('unsupported minisign signature');
  const globalSignature = Buffer.from(globalLine, 'base64');
  if (globalSignature.length !== 64) throw new Error('malformed minisign global signature');
  return {
    algorithm,
    keyId: keyIdHex(raw.subarray(2, 10)),
    signature: raw.subarray(10),
    trustedComment: trusted.slice('trusted comment: '.length),
    globalSignature,
  };
}

/** Hash of the file as the signature covers it (BLAKE2b-512 for `ED`). */
export function messageOf(algorithm: 'Ed' | 'ED', data: Buffer): Buffer {
  return algorithm === 'ED' ? createHash('blake2b512').update(data).digest() : data;
}

export type VerifyOutcome =
  | { ok: true; keyId: string }
  | { ok: false; reason: 'unknown_key' | 'bad_signature' | 'bad_trusted_comment' };

/** Checks a signature of `message` (already hashed per the algorithm) against trusted keys. */
export function verifySignature(
  sig: MinisignSignature,
  message: Buffer,
  trusted: readonly MinisignPublicKey[],
): VerifyOutcome {
  const key = trusted.find((k) => k.keyId === sig.keyId);
  if (!key) return { ok: false, reason: 'unknown_key' };
  if (!verify(null, message, key.key, sig.signature)) return { ok: false, reason: 'bad_signature' };
  const global = Buffer.concat([sig.signature, Buffer.from(sig.trustedComment, 'utf8')]);
  if (!verify(null, global, key.key, sig.globalSignature))
    return { ok: false, reason: 'bad_trusted_comment' };
  return { ok: true, keyId: key.keyId };
}

export interface MinisignKeyPair {
  readonly publicKeyText: string;
  readonly secretKeyDer: Buffer;
  readonly keyId: Buffer;
}

/** A fresh key pair (dev profile's local key, tests). The secret stays raw DER: not minisign's encrypted format. */
export function generateKeyPair(comment = 'llama-orch key'): MinisignKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pk = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const keyId = createHash('sha256').update(pk).digest().subarray(0, 8);
  const pub = Buffer.concat([Buffer.from('Ed', 'latin1'), keyId, pk]).toString('base64');
  return {
    publicKeyText: `untrusted comment: ${comment} public key ${keyIdHex(keyId)}\n${pub}\n`,
    secretKeyDer: privateKey.export({ format: 'der', type: 'pkcs8' }),
    keyId,
  };
}

/** Signs `data` in minisign's prehashed (`ED`) format. */
export function signMinisign(data: Buffer, keys: MinisignKeyPair, trustedComment: string): string {
  return signPrehash(messageOf('ED', data), keys, trustedComment);
}

/** Signs an artifact by its BLAKE2b-512 prehash (hashed while streaming: model files are many GiB). */
export function signPrehash(prehash: Buffer, keys: MinisignKeyPair, trustedComment: string): string {
  const key = createPrivateKey({ key: keys.secretKeyDer, format: 'der', type: 'pkcs8' });
  const sig = sign(null, prehash, key);
  const global = sign(null, Buffer.concat([sig, Buffer.from(trustedComment, 'utf8')]), key);
  const line = Buffer.concat([Buffer.from('ED', 'latin1'), keys.keyId, sig]).toString('base64');
  return `untrusted comment: signature from llama-orch\n${line}\ntrusted comment: ${trustedComment}\n${global.toString('base64')}\n`;
}

export { PKCS8_ED25519 };
