/**
 * Model downloads for `https:` and `hf:` catalog sources: resumable (HTTP Range on a `.part`
 * file), hashed on the fly, with progress; the file is renamed into place only when complete
 * (and, when a digest is pinned, only when it matches).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface FetchOptions {
  readonly expectedDigest?: string | undefined;
  readonly onProgress?: (bytes: number, total: number | undefined) => void;
  readonly signal?: AbortSignal;
  /** Attempts when the connection drops mid-transfer (each resumes where the last stopped). */
  readonly attempts?: number;
}

/** `hf:org/repo/path/to/file.gguf[@revision]` → the Hub's resolve URL under `endpoint`. */
export function hfUrl(source: string, endpoint: string): string {
  const ref = source.slice('hf:'.length).replace(/^\/+/, '');
  const [path = '', revision = 'main'] = ref.split('@');
  const parts = path.split('/');
  if (parts.length < 3) throw new Error(`hf source must be hf:org/repo/file[@revision], got '${source}'`);
  const repo = parts.slice(0, 2).join('/');
  const file = parts.slice(2).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
}

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Downloads `url` to `dest`; returns the sha256 digest of the bytes. */
export async function fetchToFile(url: string, dest: string, o: FetchOptions = {}): Promise<string> {
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let lastError: unknown;
  for (let attempt = 0; attempt < (o.attempts ?? 5); attempt++) {
    const have = existsSync(part) ? (await stat(part)).size : 0;
    const hash = createHash('sha256');
    if (have > 0) await hashFile(part, hash);
    try {
      const res = await fetch(url, {
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        ...(o.signal ? { signal: o.signal } : {}),
      });
      if (res.status !== 200 && res.status !== 206) throw new Error(`GET ${url} answered ${res.status}`);
      const resumed = res.status === 206;
      if (!resumed && have > 0) {
        // The server ignored the range: start over.
        await unlink(part);
        continue;
      }
      const length = Number(res.headers.get('content-length') ?? NaN);
      const total = Number.isFinite(length) ? length + (resumed ? have : 0) : undefined;
      let bytes = resumed ? have : 0;
      const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
      body.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
        o.onProgress?.(bytes, total);
      });
      await pipeline(body, createWriteStream(part, { flags: resumed ? 'a' : 'w' }));
      if (total !== undefined && bytes !== total)
        throw new Error(`short transfer: ${bytes} of ${total} bytes`);
      const digest = `sha256:${hash.digest('hex')}`;
      if (o.expectedDigest !== undefined && o.expectedDigest !== digest) {
        await unlink(part);
        throw new Error(`downloaded ${url} hashes to ${digest}, not the pinned ${o.expectedDigest}`);
      }
      await rename(part, dest);
      return digest;
    } catch (err) {
      lastError = err;
      if (o.signal?.aborted || String(err).includes('not the pinned')) throw err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
