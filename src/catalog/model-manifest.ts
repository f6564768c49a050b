/**
 * Manifests of directory models (SPEC §17 §8): a Hugging Face repository for vLLM or TGI, a
 * TensorRT-LLM engine or a Triton model repository is one artifact, described by the relative
 * path and SHA-256 of each file it holds, in RFC 8785 canonical JSON. The manifest's bytes are
 * what a directory model's minisign signature covers, and their SHA-256 is the model's digest,
 * so changing, adding or removing one file changes the digest.
 *
 * Symbolic links are followed (the Hub's cache keeps snapshot files as links to blobs); a link
 * loop or anything that is neither a file nor a directory makes the directory unusable.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import canonicalizeModule from 'canonicalize';

// The package is CommonJS with an ESM-style declaration: under nodenext the function is `default`.
type Canonicalize = (input: unknown) => string | undefined;
const canonicalize: Canonicalize =
  canonicalizeModule.default ?? (canonicalizeModule as unknown as Canonicalize);

/** The manifest format this version writes and reads. */
export const MANIFEST_FORMAT = 'llama-orch-model-manifest/1';

export interface ManifestFile {
  /** Path relative to the model directory, `/`-separated. */
  readonly path: string;
  /** `sha256:<hex>` of the file's bytes. */
  readonly sha256: string;
  readonly size: number;
}

export interface ModelManifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** Sorted by `path` (UTF-16 code units, as RFC 8785 sorts keys). */
  readonly files: readonly ManifestFile[];
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** The manifest of the directory at `dir`: every file below it, links followed. */
export async function buildManifest(dir: string): Promise<ModelManifest> {
  const files: ManifestFile[] = [];
  const visiting = new Set<string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const real = await realpath(abs);
    if (visiting.has(real)) throw new Error(`model directory ${dir}: link loop at ${rel || '.'}`);
    visiting.add(real);
    const names = (await readdir(abs)).sort();
    for (const name of names) {
      const childAbs = join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const st = await stat(childAbs);
      if (st.isDirectory()) await walk(childAbs, childRel);
      else if (st.isFile()) files.push({ path: childRel, sha256: await sha256Of(childAbs), size: st.size });
      else throw new Error(`model directory ${dir}: ${childRel} is neither a file nor a directory`);
    }
    visiting.delete(real);
  };
  await walk(dir, '');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { format: MANIFEST_FORMAT, files };
}

/** The canonical bytes of a manifest (what its signature covers). */
export function manifestBytes(m: ModelManifest): Buffer {
  const text = canonicalize(m);
  if (text === undefined) throw new Error('manifest cannot be canonicalized');
  return Buffer.from(text, 'utf8');
}

/** The digest of a directory model: `sha256:` of its manifest's canonical bytes. */
export function manifestDigest(m: ModelManifest): string {
  return `sha256:${createHash('sha256').update(manifestBytes(m)).digest('hex')}`;
}

/** Reads a manifest written by `llorch catalog sign DIR` (`<dir>.manifest.json`); undefined if it is not one. */
export function parseManifest(text: string): ModelManifest | undefined {
  try {
    const v = JSON.parse(text) as { format?: unknown; files?: unknown };
    if (v.format !== MANIFEST_FORMAT || !Array.isArray(v.files)) return undefined;
    return v as ModelManifest;
  } catch {
    return undefined;
  }
}

/** What differs between a signed manifest and the directory as it is now, for a refusal's cause. */
export function manifestChanges(signed: ModelManifest, now: ModelManifest, max = 3): string[] {
  const before = new Map(signed.files.map((f) => [f.path, f.sha256]));
  const after = new Map(now.files.map((f) => [f.path, f.sha256]));
  const out: string[] = [];
  for (const [path, sha] of after) {
    const was = before.get(path);
    if (was === undefined) out.push(`${path} added`);
    else if (was !== sha) out.push(`${path} changed`);
  }
  for (const path of before.keys()) if (!after.has(path)) out.push(`${path} removed`);
  return out.length > max ? [...out.slice(0, max), `${out.length - max} more`] : out;
}
