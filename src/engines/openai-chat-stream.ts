/**
 * A streamed OpenAI `/v1/chat/completions` response as engine events. vLLM, TGI's Messages API
 * and llama-server all stream this shape (OpenAI's `chat.completion.chunk`): `data: {chunk}`
 * events whose `choices[0].delta` carries `content` and `tool_calls` fragments, a
 * `finish_reason` on the last choice, an optional usage chunk (`choices: []`, sent with
 * `stream_options.include_usage`) and `data: [DONE]`. Followed sources: vLLM
 * `vllm/entrypoints/openai/chat_completion/protocol.py` and `serving.py` (IBM/vllm at
 * `3302dc7f9c09`, upstream layout of February 2026), TGI `router/src/lib.rs`
 * `ChatCompletionChunk`, llama.cpp `tools/server/server-task.cpp` (`de3ff815ea7d`).
 */
import type { ToolCall } from '../domain/sampling.js';
import type { Engine } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { EngineEvent } from './adapter.js';

type StopReason = Extract<EngineEvent, { kind: 'done' }>['stopReason'];

/** One `tool_calls[]` entry of a delta: the first fragment of a call names it, the rest append arguments. */
interface ToolCallDelta {
  index?: number;
  id?: string | null;
  type?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

/** The parts of a `chat.completion.chunk` read here. */
interface ChatChunk {
  object?: string;
  error?: unknown;
  choices?: {
    index?: number;
    delta?: { role?: string; content?: string | null; tool_calls?: ToolCallDelta[] | null } | null;
    finish_reason?: string | null;
    /** vLLM only: the stop string or stop token id that ended the choice, null at end-of-sequence. */
    stop_reason?: string | number | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

export interface ChatStreamOptions {
  readonly engine: Engine;
  /** The error an engine's error event (a chunk with `error`, or `object: "error"`) is. */
  readonly streamError: (body: unknown) => OrchError;
}

/**
 * `finish_reason` (with vLLM's `stop_reason`) as a stop reason. "stop" with a stop reason is a
 * stop string or token of the request, without one end-of-sequence (engines that never send
 * `stop_reason` read as end-of-sequence; the orchestrator reports both as "stop"). TGI names them
 * "eos_token" and "stop_sequence". Any tool call assembled makes it "tool_calls", also where the
 * engine says "stop" (vLLM does for a named `tool_choice`, OpenAI's behaviour).
 */
function stopReasonOf(
  finish: string | null,
  reason: string | number | null | undefined,
  calls: number,
): StopReason {
  if (finish === 'length') return 'length';
  if (finish === 'tool_calls' || (calls > 0 && finish !== null)) return 'tool_calls';
  if (finish === 'stop') return reason === null || reason === undefined ? 'eos' : 'stop';
  if (finish === 'eos_token') return 'eos';
  if (finish === 'stop_sequence') return 'stop';
  return 'unknown';
}

/**
 * Turns a streamed chat completion into `tokens` events and one `done`. Token counts follow
 * `VllmStreamParser`: with vLLM's `continuous_usage_stats` every chunk carries cumulative usage,
 * so a chunk stands for exactly the tokens generated since the last (tokens whose text is held
 * back, or that went into a tool call, give a `tokens` event with no text); without usage each
 * chunk with content or a tool-call fragment counts as one. `done` carries the final usage
 * (prompt tokens after the chat template) and the tool calls assembled from their fragments.
 */
export class OpenAiChatStreamParser {
  readonly #o: ChatStreamOptions;
  #emitted = 0;
  #finish: string | null = null;
  #stopReason: string | number | null | undefined;
  #usage: { prompt: number; completion: number } | undefined;
  #done = false;
  /** Tool calls by their `index` in the stream. */
  readonly #calls = new Map<number, { id: string; name: string; arguments: string }>();

  constructor(opts: ChatStreamOptions) {
    this.#o = opts;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The tool calls assembled so far, in index order. */
  toolCalls(): ToolCall[] {
    return [...this.#calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, c]) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  }

  push(data: string): EngineEvent[] {
    if (data.trim() === '[DONE]') {
      this.#done = true;
      const toolCalls = this.toolCalls();
      return [
        {
          kind: 'done',
          tokensIn: this.#usage?.prompt ?? 0,
          tokensOut: this.#usage?.completion ?? this.#emitted,
          stopReason: stopReasonOf(this.#finish, this.#stopReason, toolCalls.length),
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
        },
      ];
    }
    let chunk: ChatChunk;
    try {
      chunk = JSON.parse(data) as ChatChunk;
    } catch {
      throw new OrchError('WORKER_RESET', `${this.#o.engine} sent a malformed stream chunk`, {
        engine: this.#o.engine,
      });
    }
    if (chunk.error !== undefined || chunk.object === 'error') throw this.#o.streamError(chunk);
    const usage = chunk.usage;
    if (usage) this.#usage = { prompt: usage.prompt_tokens ?? 0, completion: usage.completion_tokens ?? 0 };
    const choice = chunk.choices?.[0];
    if (!choice) return [];
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
      this.#finish = choice.finish_reason;
      this.#stopReason = choice.stop_reason;
    }
    const text = choice.delta?.content ?? '';
    const fragments = choice.delta?.tool_calls ?? [];
    for (const f of fragments) this.#addFragment(f);
    const count = usage
      ? (usage.completion_tokens ?? 0) - this.#emitted
      : text !== '' || fragments.length > 0
        ? 1
        : 0;
    if (count <= 0) return [];
    this.#emitted += count;
    return [{ kind: 'tokens', count, ids: [], text }];
  }

  #addFragment(f: ToolCallDelta): void {
    const index = f.index ?? this.#calls.size;
    let call = this.#calls.get(index);
    if (!call) {
      call = { id: '', name: '', arguments: '' };
      this.#calls.set(index, call);
    }
    if (typeof f.id === 'string' && f.id !== '') call.id = f.id;
    if (typeof f.function?.name === 'string') call.name += f.function.name;
    if (typeof f.function?.arguments === 'string') call.arguments += f.function.arguments;
    // Engines that send no id still need one to match the tool turn that answers the call.
    if (call.id === '') call.id = `call_${index}`;
  }
}
