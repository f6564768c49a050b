/**
 * Digest and signature check of a model artifact as it is on disk: a file (its bytes) or a
 * directory (its manifest, `model-manifest.ts`). A file is hashed in one streaming pass for both
 * its SHA-256 digest and the BLAKE2b-512 prehash that minisign's `ED` signatures cover, so a
 * model of many GiB is never held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  buildManifest,
  manifestBytes,
  manifestChanges,
  manifestDigest,
  parseManifest,
  type ModelManifest,
} from './model-manifest.js';
import {
  messageOf,
  parsePublicKey,
  parseSignature,
  verifySignature,
  type MinisignPublicKey,
} from './minisign.js';

export type VerificationReason =
  | 'signed'
  | 'unsigned'
  | 'unknown_key'
  | 'bad_signature'
  | 'bad_trusted_comment'
  | 'malformed_signature'
  | 'digest_mismatch'
  | 'missing_file'
  /** A model loaded by path whose digest no signed catalog entry has. */
  | 'uncatalogued';

export interface Verification {
  readonly ok: boolean;
  readonly reason: VerificationReason;
  readonly digest: string | undefined;
  readonly keyId: string | undefined;
  /** What differs, where it is known (the files of a directory model that changed). */
  readonly detail?: string | undefined;
}

/** An artifact's digest and the message its signature covers. */
export interface HashedArtifact {
  readonly kind: 'file' | 'directory';
  readonly digest: string;
  /** The signed message for a minisign algorithm (`ED`: BLAKE2b-512 prehash, `Ed`: the bytes). */
  message(algorithm: 'Ed' | 'ED'): Promise<Buffer>;
  /** The manifest of a directory model. */
  readonly manifest?: ModelManifest | undefined;
}

/** Where an artifact's detached signature lives when none is given: `<path>.minisig`. */
export function signatureSidecar(path: string): string {
  return `${path.replace(/\/+$/, '')}.minisig`;
}

/** Where `llorch catalog sign DIR` keeps the signed manifest: `<dir>.manifest.json`. */
export function manifestSidecar(dir: string): string {
  return `${dir.replace(/\/+$/, '')}.manifest.json`;
}

/** Hashes the file or directory at `path`; undefined when nothing is there. */
export async function hashArtifact(path: string): Promise<HashedArtifact | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) return undefined;
  if (st.isDirectory()) {
    const manifest = await buildManifest(path);
    if (manifest.files.length === 0) return undefined;
    const bytes = manifestBytes(manifest);
    return {
      kind: 'directory',
      digest: manifestDigest(manifest),
      manifest,
      message: async (alg) => messageOf(alg, bytes),
    };
  }
  if (!st.isFile()) return undefined;
  const sha = createHash('sha256');
  const blake = createHash('blake2b512');
  for await (const chunk of createReadStream(path)) {
    sha.update(chunk as Buffer);
    blake.update(chunk as Buffer);
  }
  const prehash = blake.digest();
  return {
    kind: 'file',
    digest: `sha256:${sha.digest('hex')}`,
    // Legacy `Ed` signatures cover the bytes themselves: only small files are signed that way.
    message: async (alg) => (alg === 'ED' ? prehash : readFile(path)),
  };
}

export class ArtifactVerifier {
  readonly #roots: readonly MinisignPublicKey[];

  constructor(roots: readonly MinisignPublicKey[]) {
    this.#roots = roots;
  }

  /** A verifier trusting the minisign public key files at `paths` (`catalog.trust_roots`). */
  static async load(paths: readonly string[]): Promise<ArtifactVerifier> {
    return new ArtifactVerifier(
      await Promise.all(paths.map(async (p) => parsePublicKey(await readFile(p, 'utf8')))),
    );
  }

  /**
   * Checks the artifact at `path` against a pinned digest (when given) and a signature (the
   * text given, else the `<path>.minisig` next to it).
   */
  async verify(
    path: string,
    signatureText: string | undefined,
    pinned: string | undefined,
  ): Promise<Verification> {
    const a = await hashArtifact(path);
    if (a === undefined) return { ok: false, reason: 'missing_file', digest: undefined, keyId: undefined };
    if (pinned !== undefined && pinned !== a.digest)
      return {
        ok: false,
        reason: 'digest_mismatch',
        digest: a.digest,
        keyId: undefined,
        detail: await changedFiles(path, a),
      };
    const sidecar = signatureSidecar(path);
    const text = signatureText ?? (existsSync(sidecar) ? await readFile(sidecar, 'utf8') : undefined);
    if (text === undefined) return { ok: false, reason: 'unsigned', digest: a.digest, keyId: undefined };
    return this.check(a, text);
  }

  /** The signature check of an artifact already hashed. */
  async check(a: HashedArtifact, signatureText: string): Promise<Verification> {
    let sig;
    try {
      sig = parseSignature(signatureText);
    } catch {
      return { ok: false, reason: 'malformed_signature', digest: a.digest, keyId: undefined };
    }
    const out = verifySignature(sig, await a.message(sig.algorithm), this.#roots);
    return out.ok
      ? { ok: true, reason: 'signed', digest: a.digest, keyId: out.keyId }
      : { ok: false, reason: out.reason, digest: a.digest, keyId: sig.keyId };
  }
}

/** For a directory model: the files that differ from its signed manifest, when that is kept beside it. */
export async function changedFiles(path: string, a: HashedArtifact): Promise<string | undefined> {
  if (a.manifest === undefined || !existsSync(manifestSidecar(path))) return undefined;
  const signed = parseManifest(await readFile(manifestSidecar(path), 'utf8'));
  const changes = signed === undefined ? [] : manifestChanges(signed, a.manifest);
  return changes.length === 0 ? undefined : changes.join(', ');
}
