/**
 * llama-server's native HTTP API as this project uses it (llama.cpp tools/server/README.md;
 * captured transcripts in test/fixtures/llamacpp/).
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
}

/** One `data:` frame of the `/completion` stream. */
export interface CompletionFrame {
  index?: number;
  content: string;
  tokens?: number[];
  stop: boolean;
  id_slot?: number;
  tokens_predicted?: number;
  tokens_evaluated?: number;
  /** Final frame only: `eos`, `limit`, `word`, or `none`. */
  stop_type?: string;
  timings?: { prompt_n?: number; predicted_n?: number; predicted_ms?: number; prompt_ms?: number };
  /** An error reported inside the stream. */
  error?: ErrorBody['error'];
}

export interface ErrorBody {
  error: { code: number; message: string; type: string };
}

export interface TokenizeResponse {
  tokens: number[];
}

export interface PropsResponse {
  total_slots: number;
  model_path?: string;
  model_alias?: string;
  build_info?: string;
  default_generation_settings?: { n_ctx?: number; params?: Record<string, unknown> };
}

export interface SlotInfo {
  id: number;
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
