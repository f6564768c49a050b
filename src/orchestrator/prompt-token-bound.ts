/**
 * An upper bound on a prompt's tokens that needs no tokenizer round trip, for the vocabularies
 * where one exists, so admission asks the engine only when the bound cannot prove the fit.
 *
 * Why the bound holds: a byte-level BPE vocabulary (GPT-2 style) makes every token of at least
 * one byte of the text, and a SentencePiece BPE vocabulary (LLaMA style) makes every token of at
 * least one character, falling back to one token per byte for characters it lacks; neither
 * normalizes text into something longer. So tokens ≤ UTF-8 bytes + the tokens the tokenizer adds
 * itself: BOS, EOS (some embedding models), the SentencePiece dummy-prefix space. Vocabularies
 * that normalize (Unigram with a precompiled NFKC map, WordPiece with NFD and accent stripping)
 * can expand text, so they are never bounded; neither is any tokenizer whose kind is not known.
 */
import type { SubmitInput } from '../domain/submit.js';
import type { PoolRuntime } from './pool-runtime.js';

/** Tokens a byte-bounded tokenizer may add beyond one per byte (BOS, EOS, dummy prefix), plus one spare. */
export const SPECIAL_TOKENS_BOUND = 4;

/**
 * llama.cpp's `llama_vocab_type` values (`include/llama.h`) whose tokens each cover at least one
 * byte of the text: SPM (1, LLaMA SentencePiece with byte fallback) and BPE (2, byte-level).
 */
const BYTE_BOUNDED_LLAMA_VOCABS: ReadonlySet<unknown> = new Set([1, 2]);

/** How long a failed vocabulary lookup is left before it is tried again. */
const RETRY_LOOKUP_MS = 60_000;
const LOOKUP_TIMEOUT_MS = 2_000;

type Known = { readonly bounded: boolean } | { readonly pending: Promise<boolean>; readonly since: number };

/** Per pool configuration: a reload replaces it, and with it what was learned of the model. */
const vocabularies = new WeakMap<object, Known>();

/**
 * Whether the pool's tokenizer is known to make at most one token per UTF-8 byte (plus
 * `SPECIAL_TOKENS_BOUND`). llama.cpp states its vocabulary type in `GET /v1/models` (`meta.vocab_type`): it is read once
 * per loaded model, in the background, and until it is known the answer is no. vLLM, TGI and
 * Triton serve a Hugging Face tokenizer whose kind their APIs do not state: always no. The
 * engine simulators are treated as the engines they speak for (the llama.cpp one states BPE).
 */
export function byteBounded(pool: PoolRuntime): boolean {
  if (pool.config.engine !== 'llamacpp') return false;
  const known = vocabularies.get(pool.config);
  if (known && 'bounded' in known) return known.bounded;
  if (known && performance.now() - known.since < RETRY_LOOKUP_MS) return false;
  void lookUpVocabulary(pool);
  return false;
}

/**
 * Reads the llama.cpp pool's vocabulary type from a ready replica (at most one lookup at a time).
 * Resolves to whether prompts on it are byte-bounded; a failed lookup resolves to false and is
 * retried after a while.
 */
export function lookUpVocabulary(pool: PoolRuntime): Promise<boolean> {
  const config = pool.config;
  const known = vocabularies.get(config);
  if (known && 'bounded' in known) return Promise.resolve(known.bounded);
  if (known && performance.now() - known.since < RETRY_LOOKUP_MS) return known.pending;
  const replica = pool.readyReplicas()[0];
  if (!replica || !/^https?:\/\//.test(replica.adapter.baseUrl)) return Promise.resolve(false);
  const pending = fetch(new URL('/v1/models', replica.adapter.baseUrl), {
    signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
  })
    .then(async (res) => {
      if (!res.ok) throw new Error(`GET /v1/models: HTTP ${res.status}`);
      const bounded = vocabTypeIsByteBounded(await res.json());
      vocabularies.set(config, { bounded });
      return bounded;
    })
    // Stays pending-and-failed until RETRY_LOOKUP_MS has passed: exact counts meanwhile.
    .catch(() => false);
  vocabularies.set(config, { pending, since: performance.now() });
  return pending;
}

/**
 * True when llama.cpp's `/v1/models` answer states a byte-bounded vocabulary. Some builds
 * serialize the enum as a boolean (a regression of their JSON switch): that is not known.
 */
export function vocabTypeIsByteBounded(body: unknown): boolean {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length === 0) return false;
  return data.every((m: unknown) => {
    const meta = (m as { meta?: { vocab_type?: unknown } } | null)?.meta;
    return BYTE_BOUNDED_LLAMA_VOCABS.has(meta?.vocab_type);
  });
}

/** At most this many tokens for `text` on a byte-bounded tokenizer. */
function boundOf(text: string): number {
  return Buffer.byteLength(text, 'utf8') + SPECIAL_TOKENS_BOUND;
}

/**
 * The prompt's token count as far as the bound proves it fits: for a completion, an upper bound
 * on its prompt tokens when bound + `max_tokens` ≤ ctx; for an embedding task, the sum of its
 * inputs' bounds when each is ≤ ctx. Undefined when the bound proves nothing (chat turns, whose
 * template is the engine's; a vocabulary not known to be byte-bounded; a prompt near the limit):
 * then only the engine's count decides.
 */
export function promptTokenBound(pool: PoolRuntime, input: SubmitInput): number | undefined {
  if (input.messages !== undefined) return undefined;
  if (!byteBounded(pool)) return undefined;
  if (input.workload === 'embedding') {
    let sum = 0;
    for (const text of input.inputs ?? []) {
      const bound = boundOf(text);
      if (bound > input.ctx) return undefined;
      sum += bound;
    }
    return sum;
  }
  const bound = boundOf(input.prompt ?? '');
  return bound + input.maxTokens <= input.ctx ? bound : undefined;
}
