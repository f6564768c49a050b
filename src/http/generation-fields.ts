/** The chat and sampling fields of a request body (OrchQueue v1 and the OpenAI surface alike). */
import type {
  ChatMessage,
  GenerationFields,
  ResponseFormat,
  SamplingOptions,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../domain/sampling.js';
import { OrchError } from '../errors/orch-error.js';

/** The wire fields, as both schemas declare them (validated before this runs). */
export interface GenerationBody {
  readonly messages?: readonly WireMessage[] | undefined;
  readonly temperature?: number | undefined;
  readonly top_p?: number | undefined;
  readonly top_k?: number | undefined;
  readonly min_p?: number | undefined;
  readonly repeat_penalty?: number | undefined;
  readonly presence_penalty?: number | undefined;
  readonly frequency_penalty?: number | undefined;
  readonly stop?: string | readonly string[] | null | undefined;
  readonly response_format?: unknown;
  readonly tools?: readonly unknown[] | undefined;
  readonly tool_choice?: unknown;
}

export interface WireMessage {
  readonly role: string;
  readonly content?: string | null | readonly { readonly type: string; readonly text?: string }[] | undefined;
  readonly name?: string | undefined;
  readonly tool_calls?: readonly unknown[] | undefined;
  readonly tool_call_id?: string | undefined;
}

/** Chat turns in domain form: text parts joined, tool fields kept. */
export function toMessages(messages: readonly WireMessage[], field = 'messages'): ChatMessage[] {
  return messages.map((m, i) => {
    let content: string | null;
    if (m.content === undefined || m.content === null) content = null;
    else if (typeof m.content === 'string') content = m.content;
    else {
      const other = m.content.find((p) => p.type !== 'text');
      if (other !== undefined)
        throw new OrchError(
          'INVALID_PARAMS',
          `${field}[${i}].content: part type '${other.type}' is not supported (text only)`,
        );
      content = m.content.map((p) => p.text ?? '').join('');
    }
    if (content === null && (m.role !== 'assistant' || m.tool_calls === undefined))
      throw new OrchError('INVALID_PARAMS', `${field}[${i}].content: required for role '${m.role}'`);
    return {
      role: m.role as ChatMessage['role'],
      content,
      ...(m.name === undefined ? {} : { name: m.name }),
      ...(m.tool_calls === undefined ? {} : { tool_calls: m.tool_calls as ToolCall[] }),
      ...(m.tool_call_id === undefined ? {} : { tool_call_id: m.tool_call_id }),
    };
  });
}

export function generationFieldsOf(body: GenerationBody): GenerationFields {
  const sampling: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] } = {};
  if (body.temperature !== undefined) sampling.temperature = body.temperature;
  if (body.top_p !== undefined) sampling.topP = body.top_p;
  if (body.top_k !== undefined) sampling.topK = body.top_k;
  if (body.min_p !== undefined) sampling.minP = body.min_p;
  if (body.repeat_penalty !== undefined) sampling.repeatPenalty = body.repeat_penalty;
  if (body.presence_penalty !== undefined) sampling.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined) sampling.frequencyPenalty = body.frequency_penalty;
  const stop =
    body.stop === undefined || body.stop === null
      ? undefined
      : typeof body.stop === 'string'
        ? [body.stop]
        : [...body.stop];
  const format = body.response_format as ResponseFormat | undefined;
  return {
    ...(body.messages === undefined ? {} : { messages: toMessages(body.messages) }),
    ...(Object.keys(sampling).length === 0 ? {} : { sampling }),
    ...(stop === undefined || stop.length === 0 ? {} : { stop }),
    ...(format === undefined || format.type === 'text' ? {} : { responseFormat: format }),
    ...(body.tools === undefined || body.tools.length === 0 ? {} : { tools: body.tools as ToolDefinition[] }),
    ...(body.tool_choice === undefined ? {} : { toolChoice: body.tool_choice as ToolChoice }),
  };
}
