/**
 * A deterministic generator of a tiny llama-architecture GGUF model: random weights from a seed,
 * a byte-level vocabulary, a few hundred KB. `llorch dev` and the tests serve it through real
 * llama-server processes, so the whole path runs without downloading a model.
 *
 * Format: GGUF v3 (little-endian), as specified in ggml's docs/gguf.md.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mulberry32 } from '../util/mulberry32.js';

/**
 * ChatML with tool calls in the Hermes style (`<tools>` in the system turn, `<tool_call>` JSON in
 * the reply), the shape many instruction-tuned GGUFs carry as `tokenizer.chat_template`. Written
 * for Jinja, llama-server's default template engine, which reads from it that the model takes
 * tools (`chat_template_caps` in `/props`) and parses its tool calls.
 */
export const TINY_CHAT_TEMPLATE = [
  "{%- if tools %}{{- '<|im_start|>system\\n' }}",
  "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}",
  "{{- '<tools>' }}{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}",
  '{{- \'\\n</tools>\\nCall: <tool_call>{"name": ..., "arguments": {...}}</tool_call><|im_end|>\\n\' }}',
  "{%- elif messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}",
  '{%- for message in messages %}',
  "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) or (message.role == 'assistant' and not message.tool_calls) %}",
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}",
  "{%- elif message.role == 'assistant' %}{{- '<|im_start|>assistant' }}",
  "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}",
  '{%- for tool_call in message.tool_calls %}{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}',
  '{{- \'\\n<tool_call>\\n{"name": "\' + tool_call.name + \'", "arguments": \' + (tool_call.arguments | tojson) + \'}\\n</tool_call>\' }}',
  "{%- endfor %}{{- '<|im_end|>\\n' }}",
  "{%- elif message.role == 'tool' %}{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}",
  '{%- endif %}{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('');

export const TINY_MODEL_ID = 'tiny';

export interface TinyGgufOptions {
  /** PRNG seed of the weights. Default 1. */
  readonly seed?: number;
  readonly nEmbd?: number;
  readonly nLayer?: number;
  readonly nHead?: number;
  readonly nFf?: number;
  /** Training context length written to the metadata. Default 2048. */
  readonly ctx?: number;
}

const ALIGNMENT = 32;
const enum T {
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
}
const GGML_TYPE_F32 = 0;
/** Vocabulary ids with a special role. */
const UNK = 0;
const BOS = 1;
const EOS = 2;

type Value =
  | { t: T.UINT32 | T.INT32 | T.FLOAT32; v: number }
  | { t: T.BOOL; v: boolean }
  | { t: T.STRING; v: string }
  | { t: T.ARRAY; of: T.STRING; v: readonly string[] }
  | { t: T.ARRAY; of: T.FLOAT32 | T.INT32; v: readonly number[] };

const prng = mulberry32;

class Writer {
  readonly #chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  pad(): void {
    const rem = this.length % ALIGNMENT;
    if (rem !== 0) this.push(Buffer.alloc(ALIGNMENT - rem));
  }
  value(v: Value): void {
    this.u32(v.t);
    switch (v.t) {
      case T.UINT32:
        return this.u32(v.v);
      case T.INT32:
        return this.i32(v.v);
      case T.FLOAT32:
        return this.f32(v.v);
      case T.BOOL:
        return this.push(Buffer.from([v.v ? 1 : 0]));
      case T.STRING:
        return this.str(v.v);
      case T.ARRAY:
        this.u32(v.of);
        this.u64(v.v.length);
        if (v.of === T.STRING) for (const s of v.v) this.str(s);
        else if (v.of === T.FLOAT32) for (const n of v.v) this.f32(n);
        else for (const n of v.v) this.i32(n);
        return;
    }
  }
  concat(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/** `<unk>`, `<s>`, `</s>`, the 256 byte tokens, and `▁`: every text tokenizes via byte fallback. */
function vocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // byte
  }
  tokens.push('\u2581');
  types.push(1); // normal
  return { tokens, scores: tokens.map(() => 0), types };
}

interface Tensor {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** The GGUF bytes of the tiny model. Same options → identical bytes. */
export function tinyGgufBytes(opts: TinyGgufOptions = {}): Buffer {
  const nEmbd = opts.nEmbd ?? 64;
  const nLayer = opts.nLayer ?? 2;
  const nHead = opts.nHead ?? 4;
  const nFf = opts.nFf ?? 128;
  const ctx = opts.ctx ?? 2048;
  const vocab = vocabulary();
  const nVocab = vocab.tokens.length;
  const rand = prng(opts.seed ?? 1);

  const tensors: Tensor[] = [];
  const random = (name: string, dims: number[], scale: number) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
    tensors.push({ name, dims, data });
    return data;
  };
  const ones = (name: string, n: number) =>
    tensors.push({ name, dims: [n], data: new Float32Array(n).fill(1) });

  random('token_embd.weight', [nEmbd, nVocab], 1);
  ones('output_norm.weight', nEmbd);
  // Large output weights keep greedy picks far from ties; special tokens get zero rows so that
  // random text never samples end-of-sequence (streams run to max_tokens).
  const out = random('output.weight', [nEmbd, nVocab], 8 / Math.sqrt(nEmbd));
  for (const id of [UNK, BOS, EOS]) out.fill(0, id * nEmbd, (id + 1) * nEmbd);
  for (let l = 0; l < nLayer; l++) {
    const s = 1 / Math.sqrt(nEmbd);
    ones(`blk.${l}.attn_norm.weight`, nEmbd);
    random(`blk.${l}.attn_q.weight`, [nEmbd, nEmbd], s);
    random(`blk.${l}.attn_k.weight`, [nEmbd, nEmbd], s);
    random(`blk.${l}.attn_v.weight`, [nEmbd, nEmbd], s);
    random(`blk.${l}.attn_output.weight`, [nEmbd, nEmbd], s);
    ones(`blk.${l}.ffn_norm.weight`, nEmbd);
    random(`blk.${l}.ffn_gate.weight`, [nEmbd, nFf], s);
    random(`blk.${l}.ffn_up.weight`, [nEmbd, nFf], s);
    random(`blk.${l}.ffn_down.weight`, [nFf, nEmbd], 1 / Math.sqrt(nFf));
  }

  const kv: [string, Value][] = [
    ['general.architecture', { t: T.STRING, v: 'llama' }],
    ['general.name', { t: T.STRING, v: `llama-orch tiny (seed ${opts.seed ?? 1})` }],
    ['general.alignment', { t: T.UINT32, v: ALIGNMENT }],
    ['llama.vocab_size', { t: T.UINT32, v: nVocab }],
    ['llama.context_length', { t: T.UINT32, v: ctx }],
    ['llama.embedding_length', { t: T.UINT32, v: nEmbd }],
    ['llama.block_count', { t: T.UINT32, v: nLayer }],
    ['llama.feed_forward_length', { t: T.UINT32, v: nFf }],
    ['llama.attention.head_count', { t: T.UINT32, v: nHead }],
    ['llama.attention.head_count_kv', { t: T.UINT32, v: nHead }],
    ['llama.rope.dimension_count', { t: T.UINT32, v: nEmbd / nHead }],
    ['llama.rope.freq_base', { t: T.FLOAT32, v: 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { t: T.FLOAT32, v: 1e-5 }],
    ['tokenizer.ggml.model', { t: T.STRING, v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, of: T.STRING, v: vocab.tokens }],
    ['tokenizer.ggml.scores', { t: T.ARRAY, of: T.FLOAT32, v: vocab.scores }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, of: T.INT32, v: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { t: T.UINT32, v: UNK }],
    ['tokenizer.ggml.bos_token_id', { t: T.UINT32, v: BOS }],
    ['tokenizer.ggml.eos_token_id', { t: T.UINT32, v: EOS }],
    ['tokenizer.ggml.add_bos_token', { t: T.BOOL, v: true }],
    ['tokenizer.ggml.add_eos_token', { t: T.BOOL, v: false }],
    // A chat template, so chat requests take the model's own template path as real models do.
    ['tokenizer.chat_template', { t: T.STRING, v: TINY_CHAT_TEMPLATE }],
  ];

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [k, v] of kv) {
    w.str(k);
    w.value(v);
  }
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset += Math.ceil(t.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  w.pad();
  for (const t of tensors) {
    w.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.pad();
  }
  return w.concat();
}

/**
 * Writes the model to `path` (temp file + rename, so concurrent writers never expose a partial
 * file); an identical existing file is left alone.
 */
export async function writeTinyGguf(
  path: string,
  opts: TinyGgufOptions = {},
): Promise<{ path: string; sha256: string; bytes: number }> {
  const bytes = tinyGgufBytes(opts);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const existing = await readFile(path).catch(() => undefined);
  if (!existing || !existing.equals(bytes)) {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  return { path, sha256, bytes: bytes.length };
}
