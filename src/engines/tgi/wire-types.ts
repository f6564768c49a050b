/**
 * Hugging Face text-generation-inference wire types (TGI OpenAPI document served at `/docs`,
 * `router/src/lib.rs`; mirrored by `@huggingface/tasks` text-generation specs).
 */
export interface GenerateRequest {
  inputs: string;
  parameters: {
    max_new_tokens: number;
    seed: number;
    do_sample: boolean;
    temperature: number;
    top_k: number;
    top_p: number;
    details: boolean;
    return_full_text: boolean;
    decoder_input_details: boolean;
    repetition_penalty?: number;
    stop: string[];
  };
  stream?: boolean;
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
    input_length: number;
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
  max_input_tokens?: number;
  version: string;
}

export type TokenizeResponse = { id: number; text: string; start: number; stop: number }[];
