/**
 * Prompt prefixes as chained block hashes, the key of prefix-aware placement (like vLLM's and
 * llm-d's block-hash prefix matching).
 *
 * The unit is characters of the text the engine templates, not tokens: tokens are
 * engine-specific and counting them would cost an engine round trip per task. It is sound for
 * matching because tokenizers work left to right: two prompts that share their first N
 * characters share their tokens up to (about) the token that spans character N, so a character
 * prefix match stands for a token prefix match, give or take the token at the block's edge.
 * Blocks of {@link PROMPT_BLOCK_CHARS} characters (about 64 tokens of English text, four vLLM
 * KV blocks) keep the index small while a shared system prompt of a few thousand characters is
 * still dozens of blocks.
 */
import { createHash } from 'node:crypto';
import type { GenerationFields } from '../domain/sampling.js';

/** Characters per block. */
export const PROMPT_BLOCK_CHARS = 256;

/** A task's prompt as prefix-aware placement sees it. */
export interface PromptBlocks {
  /**
   * Hash of each full block together with everything before it: equal hashes at index k mean
   * equal text up to the end of block k. A trailing partial block is not hashed (engines cache
   * whole blocks).
   */
  readonly hashes: readonly string[];
  /** Characters of the rendered prompt (partial block included). */
  readonly chars: number;
}

/** The prompt fields a task reaches the engine with. */
export interface PromptSource extends GenerationFields {
  readonly prompt: string | undefined;
}

/**
 * The text a prefix match is computed over: the plain prompt, or chat turns in order, tools
 * first (chat templates put tool definitions ahead of the turns). It is not the engine's
 * template, only a rendering with the same prefix property: tasks whose turns share a prefix
 * share a prefix here.
 */
export function promptText(t: PromptSource): string {
  if (t.messages === undefined) return t.prompt ?? '';
  const parts: string[] = [];
  if (t.tools !== undefined && t.tools.length > 0) parts.push(`\u0000tools\u0000${JSON.stringify(t.tools)}`);
  for (const m of t.messages) {
    const calls = m.tool_calls === undefined ? '' : JSON.stringify(m.tool_calls);
    parts.push(`\u0000${m.role}\u0000${m.name ?? ''}\u0000${m.content ?? ''}${calls}${m.tool_call_id ?? ''}`);
  }
  return parts.join('');
}

/** Chained hashes of `text` in blocks of `blockChars` characters. */
export function blockHashes(text: string, blockChars = PROMPT_BLOCK_CHARS): PromptBlocks {
  const hashes: string[] = [];
  const h = createHash('sha256');
  for (let at = 0; at + blockChars <= text.length; at += blockChars) {
    h.update(text.slice(at, at + blockChars));
    // The running hash covers every block so far: a match at k is a match of the whole prefix.
    hashes.push(h.copy().digest('base64url').slice(0, 22));
  }
  return { hashes, chars: text.length };
}

const memo = new WeakMap<object, PromptBlocks>();

/**
 * The blocks of a task's prompt, computed once per task spec object (dispatch runs on every
 * pump; the spec does not change).
 */
export function promptBlocksOf(spec: PromptSource): PromptBlocks {
  let b = memo.get(spec);
  if (b === undefined) {
    b = blockHashes(promptText(spec));
    memo.set(spec, b);
  }
  return b;
}

/**
 * Leading blocks that name a prompt for placement ({@link prefixKeyOf}): 512 characters, about
 * 128 tokens. Most system prompts are longer, so every user and every turn of one system prompt
 * has the same key; a longer key would take in the user's own text wherever the system prompt
 * is short, and give each request a home of its own. Prompts that share a preamble of this
 * length share their order of homes, and the load bound spreads them.
 */
export const PREFIX_KEY_BLOCKS = 2;

/** The placement key of a prompt: the chained hash of its first {@link PREFIX_KEY_BLOCKS} blocks (fewer if it is shorter). */
export function prefixKeyOf(b: PromptBlocks): string | undefined {
  return b.hashes[Math.min(PREFIX_KEY_BLOCKS, b.hashes.length) - 1];
}
