/**
 * The simulated llama-server's chat template: what `POST /apply-template` answers and what
 * `POST /v1/chat/completions` generates from. The checks and their messages follow
 * `oaicompat_chat_params_parse` (ggml-org/llama.cpp de3ff815ea7d559ee917f063901b8986f038abc6,
 * `tools/server/server-common.cpp`); the rendering is ChatML, the template of the Qwen-style
 * GGUFs the orchestrator is tested with, so prompt token counts include the turn markers, the
 * tools and the generation prompt as a real template's do.
 */
import { obj, str } from '../http-util.js';

/**
 * A request llama-server refuses while templating: `std::invalid_argument` is a 400
 * `invalid_request_error`, any other exception a 500 `server_error` (`ex_wrapper`, `server.cpp`).
 */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 500,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

const invalid = (message: string) => new TemplateError(message, 400);

/** Media parts need a multimodal projector, which the simulated model has none of. */
const MEDIA: Readonly<Record<string, string>> = {
  image_url: 'image input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
  input_audio:
    'audio input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
  input_video:
    'video input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
  video_url: 'video input is not supported - hint: if this is unexpected, you may need to provide the mmproj',
};

/** A message's text: a string, or text parts joined by newlines (`to_json_oaicompat`, `chat.cpp`). */
function contentText(content: unknown): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid("Expected 'content' to be a string or an array");
  const texts: string[] = [];
  for (const part of content) {
    const type = str(obj(part)['type']) ?? '';
    const media = MEDIA[type];
    if (media !== undefined) throw new TemplateError(media, 500);
    if (type !== 'text') throw invalid('unsupported content[].type');
    texts.push(str(obj(part)['text']) ?? '');
  }
  return texts.join('\n');
}

function toolCallsText(calls: unknown): string {
  if (!Array.isArray(calls)) return '';
  return calls
    .map((c) => {
      const fn = obj(obj(c)['function']);
      return `\n<tool_call>\n${JSON.stringify({ name: fn['name'], arguments: fn['arguments'] })}\n</tool_call>`;
    })
    .join('');
}

/** The tools block of the system turn, one function signature per line. */
function toolsText(tools: readonly unknown[]): string {
  return `# Tools\n<tools>\n${tools.map((t) => JSON.stringify(t)).join('\n')}\n</tools>`;
}

/** `tool_choice` as llama-server reads it: a string (anything else counts as the default, `auto`). */
export function toolChoiceOf(body: Record<string, unknown>): 'auto' | 'none' | 'required' {
  const v = body['tool_choice'];
  if (typeof v !== 'string') return 'auto';
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  throw invalid(`Invalid tool_choice: ${v}`);
}

/**
 * The prompt for a chat request body (`messages`, optional `tools`, `add_generation_prompt`).
 * `jinja`: the server runs with `--jinja` (its default); without it, tools are refused.
 * A trailing assistant turn is continued rather than closed, as llama-server does by default
 * (`--no-prefill-assistant` off): no end marker and no generation prompt after it.
 */
export function applyChatTemplate(body: Record<string, unknown>, jinja = true): string {
  if (!jinja) {
    // Without `--jinja` the legacy templates apply, which know nothing of tools.
    const tools = body['tools'];
    if (Array.isArray(tools) && tools.length > 0)
      throw new TemplateError('tools param requires --jinja flag', 500);
    if (typeof body['tool_choice'] === 'string' && body['tool_choice'] !== 'auto')
      throw new TemplateError('tool_choice param requires --jinja flag', 500);
  }
  if (!('messages' in body)) throw invalid("'messages' is required");
  const messages = body['messages'];
  if (!Array.isArray(messages)) throw invalid("Expected 'messages' to be an array");
  const turns = messages.map((m) => {
    const msg = obj(m);
    const role = str(msg['role']) ?? '';
    if (role !== 'assistant' && !('content' in msg))
      throw invalid("All non-assistant messages must contain 'content'");
    if (role === 'assistant' && !('content' in msg) && !('tool_calls' in msg))
      throw invalid("Assistant message must contain either 'content' or 'tool_calls'!");
    const text = contentText(msg['content']) + (role === 'assistant' ? toolCallsText(msg['tool_calls']) : '');
    return { role, text };
  });
  toolChoiceOf(body);
  const tools = Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : [];
  if (tools.length > 0) {
    const first = turns[0];
    if (first?.role === 'system') first.text = `${first.text}\n\n${toolsText(tools)}`;
    else turns.unshift({ role: 'system', text: toolsText(tools) });
  }
  let generationPrompt = body['add_generation_prompt'] !== false;
  const last = turns.at(-1);
  const prefill = last?.role === 'assistant';
  if (prefill) {
    if (turns.at(-2)?.role === 'assistant')
      throw invalid('Cannot have 2 or more assistant messages at the end of the list.');
    generationPrompt = false;
  }
  return (
    turns
      .map((t, i) =>
        prefill && i === turns.length - 1
          ? `<|im_start|>${t.role}\n${t.text}`
          : `<|im_start|>${t.role}\n${t.text}<|im_end|>\n`,
      )
      .join('') + (generationPrompt ? '<|im_start|>assistant\n' : '')
  );
}
