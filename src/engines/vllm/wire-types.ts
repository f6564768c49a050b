import type { ChatMessage, ToolChoice, ToolDefinition } from '../../domain/sampling.js';

/**
 * vLLM OpenAI-compatible server wire types (docs.vllm.ai, "OpenAI-Compatible Server"; source
 * `vllm/entrypoints/openai/protocol.py`). Only the fields llama-orch reads or sends.
 */
export interface CompletionRequest {
  model: string;
  prompt: string;
  max_tokens: number;
  stream: true;
  /** `continuous_usage_stats` puts cumulative usage on every chunk, giving exact token counts. */
  stream_options: { include_usage: boolean; continuous_usage_stats: boolean };
  seed: number;
  temperature: number;
  top_p: number;
  top_k: number;
  min_p: number;
  repetition_penalty: number;
  presence_penalty: number;
  frequency_penalty: number;
  ignore_eos: boolean;
  /** Sent only when the task set them, so default requests stay as they always were. */
  stop?: readonly string[];
  /**
   * OpenAI's field; vLLM maps it to structured outputs (`to_sampling_params`, json_object →
   * `json_object`, json_schema → `json` of `json_schema.schema`). `json_schema.name` is required.
   */
  response_format?: VllmResponseFormat;
}

export type VllmResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: { name: string; schema?: Readonly<Record<string, unknown>>; strict?: boolean };
    };

/**
 * `/v1/chat/completions` (`chat_completion/protocol.py` `ChatCompletionRequest`): the completion
 * request's sampling with `messages` for `prompt`, and the tools the chat template renders.
 */
export interface ChatCompletionRequest extends Omit<CompletionRequest, 'prompt'> {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[];
  tool_choice?: ToolChoice;
}

/**
 * `/tokenize` with chat turns (`serve/tokenize/protocol.py` `TokenizeChatRequest`): the prompt
 * after the chat template, `add_generation_prompt` true as the chat route renders it.
 */
export interface TokenizeChatRequest {
  model: string;
  messages: readonly ChatMessage[];
  add_generation_prompt: true;
  tools?: readonly ToolDefinition[];
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** One `data:` chunk of a streamed `/v1/completions` response (`object: "text_completion"`). */
export interface CompletionChunk {
  id: string;
  object: string;
  choices: {
    index: number;
    text: string;
    finish_reason: string | null;
    stop_reason?: string | number | null;
  }[];
  usage?: Usage | null;
}

/**
 * Error bodies (`vllm/entrypoints/openai/protocol.py` `ErrorResponse`). Over HTTP: a flat
 * `{"object": "error", message, type, param, code}` before v0.10.1, `{"error": {message, type,
 * param, code}}` since (#22099). In a stream, `data: {"error": <the flat body>}` before v0.10.1
 * and `data: <the nested body>` since: both read as `{"error": {message, ..., code}}`. vLLM's
 * elastic-EP scaling middleware answers 503 with `{"error": "<message>"}`.
 */
export interface ErrorInfo {
  message: string;
  type: string;
  param?: string | null;
  code: number;
  /** Present in the bodies of releases before v0.10.1. */
  object?: 'error';
}
export type ErrorBody = { error: ErrorInfo } | (ErrorInfo & { object: 'error' }) | { error: string };

export interface ModelList {
  data: { id: string; max_model_len?: number; root?: string }[];
}

export interface TokenizeResponse {
  count: number;
  max_model_len: number;
  tokens: number[];
}

export interface EmbeddingResponse {
  data: { index: number; embedding: number[] }[];
  usage: Usage;
}
