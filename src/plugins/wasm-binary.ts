/**
 * The few facts the host reads straight from a module's bytes (the JS API does not expose them
 * in Node 20): the limits of its linear memory, and the custom section that carries its manifest.
 */

/** Bytes in one WebAssembly page. */
export const WASM_PAGE_BYTES = 65_536;

/** Name of the custom section holding the plugin manifest (UTF-8 JSON). */
export const MANIFEST_SECTION = 'llorch.manifest';

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Limits of a module's linear memory, in pages. */
export interface MemoryLimits {
  readonly initialPages: number;
  /** Absent when the module declares no maximum. */
  readonly maximumPages: number | undefined;
  readonly imported: boolean;
}

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start = 0,
  ) {
    this.pos = start;
  }
  byte(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new Error('truncated module');
    this.pos += 1;
    return b;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error('malformed LEB128');
    }
  }
  name(): string {
    const len = this.u32();
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  limits(): { min: number; max: number | undefined } {
    const flags = this.byte();
    // Bit 2 marks memory64: its limits are 64-bit and the host refuses such modules anyway.
    if ((flags & 0x04) !== 0) throw new Error('memory64 is not supported');
    const min = this.u32();
    const max = (flags & 0x01) !== 0 ? this.u32() : undefined;
    return { min, max };
  }
}

function sections(bytes: Uint8Array): { id: number; start: number; end: number }[] {
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('not a WebAssembly module');
  const out: { id: number; start: number; end: number }[] = [];
  const r = new Reader(bytes, 8);
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    if (start + size > bytes.length) throw new Error('truncated module');
    out.push({ id, start, end: start + size });
    r.pos = start + size;
  }
  return out;
}

/** The limits of every memory the module defines or imports (normally exactly one). */
export function memoryLimits(bytes: Uint8Array): MemoryLimits[] {
  const found: MemoryLimits[] = [];
  for (const s of sections(bytes)) {
    const r = new Reader(bytes, s.start);
    if (s.id === 2) {
      // Import section: module name, field name, kind, then a kind-specific description.
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) r.u32();
        else if (kind === 1) {
          r.byte();
          r.limits();
        } else if (kind === 2) {
          const l = r.limits();
          found.push({ initialPages: l.min, maximumPages: l.max, imported: true });
        } else if (kind === 3) {
          r.byte();
          r.byte();
        } else if (kind === 4) {
          r.byte();
          r.u32();
        } else throw new Error(`unknown import kind ${kind}`);
      }
    } else if (s.id === 5) {
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        const l = r.limits();
        found.push({ initialPages: l.min, maximumPages: l.max, imported: false });
      }
    }
  }
  return found;
}

/** Payloads of the custom sections called `name`, in module order. */
export function customSections(bytes: Uint8Array, name: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const s of sections(bytes)) {
    if (s.id !== 0) continue;
    const r = new Reader(bytes, s.start);
    if (r.name() === name) out.push(bytes.subarray(r.pos, s.end));
  }
  return out;
}

function leb(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/**
 * The module with a custom section appended (custom sections may appear anywhere; the end keeps
 * every other byte in place). `llorch plugins build` embeds the manifest this way, so the module's
 * digest pins its manifest too.
 */
export function withCustomSection(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  sections(bytes);
  const nameBytes = new TextEncoder().encode(name);
  const body = [...leb(nameBytes.length), ...nameBytes];
  const size = body.length + payload.length;
  const header = Uint8Array.from([0x00, ...leb(size), ...body]);
  const out = new Uint8Array(bytes.length + header.length + payload.length);
  out.set(bytes, 0);
  out.set(header, bytes.length);
  out.set(payload, bytes.length + header.length);
  return out;
}
