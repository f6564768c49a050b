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
  /** v2.1.0 and later. */
  max_input_tokens?: number;
  /** Before v2.1.0, the same limit under its older name. */
  max_input_length?: number;
  version: string;
}

export type TokenizeResponse = { id: number; text: string; start: number; stop: number }[];
