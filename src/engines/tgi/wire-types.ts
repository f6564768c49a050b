/**
 * Hugging Face text-generation-inference wire types (`router/src/lib.rs` of
 * huggingface/text-generation-inference, v1.4.0 to v3.3.6; the OpenAPI document served at
 * `/docs`). Only the fields llama-orch reads or sends; where releases differ, both are typed.
 */
export interface GenerateRequest {
  inputs: string;
  parameters: {
    max_new_tokens: number;
    seed: number;
    do_sample: boolean;
    /** Absent for greedy decoding: TGI refuses `temperature <= 0`. */
    temperature?: number;
    /** Absent for no top-k limit: TGI refuses `top_k <= 0`. */
    top_k?: number;
    /** Absent for no nucleus limit: TGI refuses `top_p >= 1`. */
    top_p?: number;
    details: boolean;
    return_full_text: boolean;
    decoder_input_details: boolean;
    repetition_penalty?: number;
    /** Since v1.4.1; `[-2, 2]`. */
    frequency_penalty?: number;
    stop: string[];
    /** Since v1.4.1 (`GrammarType`, `#[serde(tag = "type", content = "value")]`). */
    grammar?: Grammar;
  };
  stream?: boolean;
}

/** A JSON-schema grammar, on `/generate` (`parameters.grammar`) and as the Messages API's `response_format`. */
export interface Grammar {
  type: 'json';
  value: Readonly<Record<string, unknown>>;
}

/**
 * `POST /v1/chat/completions` (Messages API), and the body `/chat_tokenize` takes (`ChatRequest`).
 * `model` other than "tgi" names a LoRA adapter (`adapter_id`) since v2.1.0, so "tgi" is sent.
 */
export interface ChatRequest {
  model: 'tgi';
  messages: readonly unknown[];
  max_tokens?: number;
  seed?: number;
  temperature?: number;
  top_p?: number;
  frequency_penalty?: number;
  /** TGI turns it into `repetition_penalty = presence_penalty + 2` (`ChatRequest::try_into_generate`). */
  presence_penalty?: number;
  stop?: string[];
  response_format?: Grammar;
  tools?: readonly unknown[];
  tool_choice?: unknown;
  stream?: boolean;
  stream_options?: { include_usage: boolean };
}

/** `POST /chat_tokenize` (v2.3.0 and later): the templated prompt and its tokens. */
export interface ChatTokenizeResponse {
  tokenize_response: TokenizeResponse;
  templated_text: string;
}

export interface StreamToken {
  id: number;
  text: string;
  logprob: number;
  special: boolean;
}

/** One `data:` event of `/generate_stream`; the last one carries `generated_text` and `details`. */
export interface StreamResponse {
  index: number;
  token: StreamToken;
  generated_text: string | null;
  details: {
    finish_reason: 'length' | 'eos_token' | 'stop_sequence';
    generated_tokens: number;
    /** Since v2.3.0 (#2336); absent in 1.x and 2.0 to 2.2 streams. */
    input_length?: number;
    seed?: number | null;
  } | null;
}

/** TGI's error body, over HTTP and as a stream event: `{"error": "...", "error_type": "..."}`. */
export interface ErrorResponse {
  error: string;
  error_type: string;
}

export interface Info {
  model_id: string;
  model_sha: string | null;
  max_concurrent_requests: number;
  max_total_tokens: number;
  /** Stop sequences a request may carry (`--max-stop-sequences`, default 4). */
  max_stop_sequences?: number;
  /** v2.1.0 and later. */
  max_input_tokens?: number;
  /** Before v2.1.0, the same limit under its older name. */
  max_input_length?: number;
  version: string;
}

export type TokenizeResponse = { id: number; text: string; start: number; stop: number }[];
