/**
 * The model's own chat template, for Triton: the ensemble takes text only (`text_input`), so
 * chat turns are rendered here the way the model's tokenizer would render them
 * (`apply_chat_template` with `add_generation_prompt`), with `@huggingface/jinja`, the renderer
 * transformers.js uses for the same templates.
 *
 * The template is the tokenizer's: the stock `preprocessing` model loads its tokenizer from the
 * `tokenizer_dir` parameter (triton-inference-server/tensorrtllm_backend
 * `all_models/inflight_batcher_llm/preprocessing/config.pbtxt` at
 * c2e65b88d85255be30cf50440a91662abeb497dd, `AutoTokenizer.from_pretrained(tokenizer_dir)` in its
 * `1/model.py`), and a Hugging Face tokenizer directory's `tokenizer_config.json` carries
 * `chat_template`, `bos_token` and `eos_token`. The file is read where that directory is on this
 * host's filesystem (as the engine's `config.json` is, `engine-facts.ts`); elsewhere there is no
 * template and chat is refused, never guessed.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from '../../domain/sampling.js';
import { OrchError } from '../../errors/orch-error.js';
import { parameter } from './engine-facts.js';
import type { ModelConfig } from './wire-types.js';

/** A parsed chat template and the special tokens templates refer to. */
export interface ChatTemplate {
  /** Where it was read from, for messages. */
  readonly source: string;
  readonly template: Template;
  readonly bosToken: string;
  readonly eosToken: string;
}

/** A chat template, or why there is none (for the refusal of `messages`). */
export type ChatTemplateLookup =
  { readonly found: true; readonly chat: ChatTemplate } | { readonly found: false; readonly why: string };

/** A token as `tokenizer_config.json` writes it: a string, or an `AddedToken` object. */
function tokenText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return '';
}

/**
 * `chat_template` of a `tokenizer_config.json`: a string, or a list of named templates of which
 * `default` is the one `apply_chat_template` uses without a name.
 */
function templateText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return undefined;
  const named = v as { name?: unknown; template?: unknown }[];
  const t = named.find((e) => e.name === 'default')?.template;
  return typeof t === 'string' ? t : undefined;
}

/** The chat template in the text of a `tokenizer_config.json` read from `source`. */
export function parseTokenizerConfig(text: string, source: string): ChatTemplateLookup {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { found: false, why: `${source} is not JSON` };
  }
  const t = templateText(c['chat_template']);
  if (t === undefined) return { found: false, why: `${source} has no chat_template` };
  let template: Template;
  try {
    template = new Template(t);
  } catch (err) {
    return { found: false, why: `the chat_template of ${source} does not parse: ${String(err)}` };
  }
  return {
    found: true,
    chat: { source, template, bosToken: tokenText(c['bos_token']), eosToken: tokenText(c['eos_token']) },
  };
}

/** The chat template of the tokenizer the `preprocessing` model whose configuration is `config` loads. */
export async function readChatTemplate(
  config: ModelConfig,
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<ChatTemplateLookup> {
  const dir = parameter(config, 'tokenizer_dir');
  if (dir === undefined)
    return {
      found: false,
      why: `the '${config.name}' model names no tokenizer_dir, so the chat template is unknown`,
    };
  if (!isAbsolute(dir))
    return {
      found: false,
      why: `tokenizer_dir '${dir}' of the '${config.name}' model is not an absolute path`,
    };
  const source = join(dir, 'tokenizer_config.json');
  const text = await read(source).catch(() => undefined);
  if (text === undefined)
    return { found: false, why: `${source} cannot be read from the orchestrator's host` };
  return parseTokenizerConfig(text, source);
}

/**
 * The prompt the model sees for `messages`: the template rendered with the generation prompt,
 * as `apply_chat_template(messages, add_generation_prompt=True)`. A template that raises (roles
 * out of order, …) is the task's fault: `INVALID_PARAMS`.
 */
export function renderChat(chat: ChatTemplate, messages: readonly ChatMessage[]): string {
  try {
    return chat.template.render({
      messages: messages.map((m) => ({ ...m, content: m.content ?? '' })),
      add_generation_prompt: true,
      bos_token: chat.bosToken,
      eos_token: chat.eosToken,
    });
  } catch (err) {
    throw new OrchError(
      'INVALID_PARAMS',
      `messages: the model's chat template (${chat.source}) refused them: ${err instanceof Error ? err.message : String(err)}`,
      { engine: 'triton' },
    );
  }
}
