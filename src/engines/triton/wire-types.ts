/**
 * Triton Inference Server wire types: KServe v2 REST (`/v2`, `/v2/health/ready`,
 * `/v2/models/{m}[/ready|/config]`, `/v2/models/{m}/infer`) and Triton's generate extension
 * (`docs/protocol/extension_generate.md`) as the TensorRT-LLM backend's `ensemble` model uses it
 * (inputs `text_input`, `max_tokens`, `stream`, sampling tensors; output `text_output`).
 */
export interface GenerateRequest {
  text_input: string;
  max_tokens: number;
  stream: boolean;
  random_seed: number;
  top_k: number;
  top_p: number;
  temperature: number;
  repetition_penalty: number;
  exclude_input_in_output: boolean;
  /** -1: no end id, generate exactly `max_tokens` (TRT-LLM convention). */
  end_id?: number;
}

/** One generate response (one SSE `data:` event per step on `generate_stream`). */
export interface GenerateResponse {
  model_name: string;
  model_version: string;
  text_output: string;
}

/** Errors: `{"error": "..."}` as the body of a non-2xx response or as a stream event. */
export interface ErrorResponse {
  error: string;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelConfig {
  name: string;
  max_batch_size?: number;
  parameters?: Record<string, { string_value: string }>;
}

export interface InferResponse {
  outputs: { name: string; shape: number[]; data: number[] }[];
}
