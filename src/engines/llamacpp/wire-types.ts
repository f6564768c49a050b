/**
 * llama-server's native HTTP API as this project uses it, read from the pinned source
 * (ggml-org/llama.cpp de3ff815ea7d559ee917f063901b8986f038abc6, the `v0.5.0` bundle of
 * node-llama-cpp 3.22.1: `tools/server/server-context.cpp`, `server-task.cpp`,
 * `server-common.cpp`) and from older builds where they differ; recorded transcripts in
 * test/fixtures/llamacpp/ (README there says which file and commit each follows).
 */

/** `POST /completion` body (subset). */
export interface CompletionRequest {
  prompt: string;
  n_predict: number;
  stream: true;
  /** Each stream frame carries the ids of the tokens whose text it releases. */
  return_tokens: true;
  seed: number;
  temperature: number;
  top_k: number;
  top_p: number;
  min_p: number;
  repeat_penalty: number;
  cache_prompt: boolean;
  ignore_eos: boolean;
  /** -1: any idle slot. */
  id_slot: number;
  /** Stop strings: generation ends when the text reaches one; it is not sent (`stop_type: word`). */
  stop?: string[];
  presence_penalty?: number;
  frequency_penalty?: number;
  /** Constrains output to JSON matching the schema (`json_schema_to_grammar`, `server-schema.cpp`). */
  json_schema?: Readonly<Record<string, unknown>>;
}

/**
 * `POST /apply-template` (`post_apply_template`, `server-context.cpp`): the chat request as
 * `/v1/chat/completions` takes it, templated without inference.
 */
export interface ApplyTemplateRequest {
  messages: readonly unknown[];
  tools?: readonly unknown[];
  tool_choice?: unknown;
}

/** `POST /v1/chat/completions` (`oaicompat_chat_params_parse`, `server-common.cpp`), streamed. */
export interface ChatCompletionRequest extends Omit<
  CompletionRequest,
  'prompt' | 'n_predict' | 'stream' | 'return_tokens' | 'json_schema'
> {
  messages: readonly unknown[];
  tools?: readonly unknown[];
  tool_choice?: unknown;
  response_format?: unknown;
  max_tokens: number;
  stream: true;
  stream_options: { include_usage: true };
}

export interface ApplyTemplateResponse {
  prompt: string;
}

/** One `data:` frame of the `/completion` stream. */
export interface CompletionFrame {
  index?: number;
  content: string;
  tokens?: number[];
  stop: boolean;
  id_slot?: number;
  tokens_predicted?: number;
  /**
   * Every prompt token, cached or not (`n_prompt_tokens` of the task; `server_task_result_cmpl_*`
   * in `server-task.cpp`). This is the prompt's size.
   */
  tokens_evaluated?: number;
  /** Final frame only: `eos`, `limit`, `word`, or `none` (`stop_type_to_str`, `server-task.cpp`). */
  stop_type?: string;
  /** Final frame: the stop string that ended generation (`""` when none did). */
  stopping_word?: string;
  /**
   * Builds before `stop_type` (e.g. ggerganov/llama.cpp 0001ec37, `examples/server/server.cpp`)
   * report the stop reason as three flags.
   */
  stopped_eos?: boolean;
  stopped_word?: boolean;
  stopped_limit?: boolean;
  /**
   * `prompt_n` counts only the prompt tokens the engine computed (`cache_n` came from the
   * prompt cache): the prefill work, not the prompt's size.
   */
  timings?: {
    cache_n?: number;
    prompt_n?: number;
    predicted_n?: number;
    predicted_ms?: number;
    prompt_ms?: number;
  };
  /** An error reported inside the stream (`data: {"error": {...}}`, the pinned framing). */
  error?: ErrorBody['error'];
}

/** `format_error_response` (`server-common.cpp`): `type` names the error class, `code` its HTTP status. */
export interface ErrorDetail {
  code: number;
  message: string;
  type: string;
}

export interface ErrorBody {
  error: ErrorDetail;
}

export interface TokenizeResponse {
  tokens: number[];
}

/**
 * `GET /props` (`get_res_props`, `server-context.cpp`). It states neither embeddings, pooling,
 * reranking nor continuous batching: those are detected otherwise (see `adapter.ts`).
 */
export interface PropsResponse {
  total_slots: number;
  model_path?: string;
  model_alias?: string;
  build_info?: string;
  default_generation_settings?: { n_ctx?: number; params?: Record<string, unknown> };
  /** True while the server has unloaded the model after `--sleep-idle-seconds` without requests. */
  is_sleeping?: boolean;
  /** Whether `/slots` is served (`--slots`, on by default; `--no-slots` turns it off). */
  endpoint_slots?: boolean;
  /**
   * What the model's chat template can render (`common_chat_templates_get_caps`, `common/chat.cpp`):
   * `supports_tool_calls` when its template takes tools and writes tool calls. Absent before
   * builds that report it.
   */
  chat_template_caps?: Record<string, boolean>;
}

/** `POST /v1/embeddings` body: the OpenAI shape; `input` may be one string or several. */
export interface EmbeddingsRequest {
  input: string[];
  encoding_format: 'float';
}

/**
 * `POST /v1/embeddings` answer (`format_embeddings_response_oaicompat`, `server-common.cpp`):
 * one normalized vector per input in input order, and the prompt tokens of all inputs.
 */
export interface EmbeddingsResponse {
  data: { index: number; embedding: number[] }[];
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface SlotInfo {
  id: number;
  /** KV cells of the slot: `-c` divided among the slots, or all of them under `--kv-unified`. */
  n_ctx: number;
  is_processing: boolean;
  /**
   * Tokens whose KV the slot holds (prompt and generated text of its last request; 0 once
   * erased). Absent until the slot has served a request.
   */
  n_prompt_tokens?: number;
}

/**
 * `POST /slots/{id}?action=erase` answer. `id_slot` echoes the requested id; llama-server erases
 * slot `id_slot % total_slots`, the id taken as an unsigned 64-bit number.
 */
export interface SlotEraseResponse {
  id_slot: number;
  /** Tokens the slot held before the erase. */
  n_erased: number;
}
