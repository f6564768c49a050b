import { createHash } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tinyGgufBytes, writeTinyGguf } from '../../src/models/tiny-gguf.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tiny GGUF generator', () => {
  it('is deterministic: same options give identical bytes, another seed different ones', () => {
    expect(sha(tinyGgufBytes({ seed: 3 }))).toBe(sha(tinyGgufBytes({ seed: 3 })));
    expect(sha(tinyGgufBytes({ seed: 3 }))).not.toBe(sha(tinyGgufBytes({ seed: 4 })));
  });

  it('writes a GGUF v3 file of a few hundred KB, atomically and idempotently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tiny-'));
    const path = join(dir, 'm', 'tiny.gguf');
    const first = await writeTinyGguf(path);
    const mtime = (await stat(path)).mtimeMs;
    const again = await writeTinyGguf(path);
    expect(again.sha256).toBe(first.sha256);
    expect((await stat(path)).mtimeMs).toBe(mtime);
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 4).toString('ascii')).toBe('GGUF');
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(first.bytes).toBeGreaterThan(100_000);
    expect(first.bytes).toBeLessThan(1_000_000);
    expect(bytes.length % 32).toBe(0);
  });
});
