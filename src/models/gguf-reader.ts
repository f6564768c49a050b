/**
 * Reads the metadata key/values of a GGUF file (v2/v3; ggml `docs/gguf.md`) without loading
 * tensors: what headroom estimates need (layers, embedding size, heads, context length).
 */
import { open } from 'node:fs/promises';

export type GgufValue = number | bigint | boolean | string | undefined;

const SCALAR_SIZES: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/** A forward reader over a file handle, refilling a window as it goes. */
class Cursor {
  #buf = Buffer.alloc(0);
  #at = 0;
  #filePos = 0;
  constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  async need(n: number): Promise<void> {
    if (this.#buf.length - this.#at >= n) return;
    const rest = this.#buf.subarray(this.#at);
    const chunk = Buffer.alloc(Math.max(n, 1 << 20));
    const { bytesRead } = await this.fh.read(chunk, 0, chunk.length, this.#filePos);
    this.#filePos += bytesRead;
    this.#buf = Buffer.concat([rest, chunk.subarray(0, bytesRead)]);
    this.#at = 0;
    if (this.#buf.length < n) throw new Error('GGUF file ends inside its metadata');
  }
  async u32(): Promise<number> {
    await this.need(4);
    const v = this.#buf.readUInt32LE(this.#at);
    this.#at += 4;
    return v;
  }
  async u64(): Promise<bigint> {
    await this.need(8);
    const v = this.#buf.readBigUInt64LE(this.#at);
    this.#at += 8;
    return v;
  }
  async bytes(n: number): Promise<Buffer> {
    await this.need(n);
    const v = this.#buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const step = Math.min(n, 1 << 20);
      await this.need(step);
      this.#at += step;
      n -= step;
    }
  }
}

async function readScalar(c: Cursor, type: number): Promise<GgufValue> {
  switch (type) {
    case 0:
      return (await c.bytes(1)).readUInt8(0);
    case 1:
      return (await c.bytes(1)).readInt8(0);
    case 2:
      return (await c.bytes(2)).readUInt16LE(0);
    case 3:
      return (await c.bytes(2)).readInt16LE(0);
    case 4:
      return c.u32();
    case 5:
      return (await c.bytes(4)).readInt32LE(0);
    case 6:
      return (await c.bytes(4)).readFloatLE(0);
    case 7:
      return (await c.bytes(1)).readUInt8(0) !== 0;
    case 8: {
      const len = Number(await c.u64());
      return (await c.bytes(len)).toString('utf8');
    }
    case 10:
      return c.u64();
    case 11:
      return (await c.bytes(8)).readBigInt64LE(0);
    case 12:
      return (await c.bytes(8)).readDoubleLE(0);
    default:
      throw new Error(`unknown GGUF value type ${type}`);
  }
}

/** Metadata of a GGUF file; arrays are skipped (their length is kept as `<key>.length`). */
export async function readGgufMetadata(path: string): Promise<Map<string, GgufValue>> {
  const fh = await open(path, 'r');
  try {
    const c = new Cursor(fh);
    if ((await c.bytes(4)).toString('latin1') !== 'GGUF') throw new Error(`${path} is not a GGUF file`);
    const version = await c.u32();
    if (version < 2) throw new Error(`GGUF version ${version} is not supported`);
    await c.u64(); // tensor count
    const kvCount = Number(await c.u64());
    const out = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = (await c.bytes(Number(await c.u64()))).toString('utf8');
      const type = await c.u32();
      if (type !== 9) {
        out.set(key, await readScalar(c, type));
        continue;
      }
      const itemType = await c.u32();
      const n = Number(await c.u64());
      out.set(`${key}.length`, n);
      if (itemType === 8) for (let k = 0; k < n; k++) await c.skip(Number(await c.u64()));
      else await c.skip(n * (SCALAR_SIZES[itemType] ?? 0));
    }
    return out;
  } finally {
    await fh.close();
  }
}
