import type { ModelConfig } from './wire-types.js';

/**
 * What a TensorRT-LLM ensemble declares, read from its model configuration
 * (`GET /v2/models/{ensemble}/config`), so that requests carry only inputs the model has.
 * On `generate`, Triton turns a key that names no declared input into a request parameter,
 * which the TensorRT-LLM backend never reads: an undeclared `random_seed` is dropped without a
 * word and sampling goes unseeded. On `infer`, an undeclared input is refused (400, "unexpected
 * inference input"). Either way the request must name only what the model declares.
 *
 * The stock ensemble's inputs changed over time (tensorrtllm_backend, then NVIDIA/TensorRT-LLM
 * `triton_backend/all_models/inflight_batcher_llm/ensemble/config.pbtxt`):
 * `exclude_input_in_output` since 869c2e0 (2024-11-19); `random_seed` renamed `seed` in c2e65b8
 * (2025-05-13); `return_num_input_tokens` / `return_num_output_tokens` with the outputs
 * `num_input_tokens` / `num_output_tokens` in the current one (2a9abd95). Sampling inputs:
 * `runtime_top_k` / `runtime_top_p` at 039e5b4 (2023-09-20), `top_k` / `top_p` from 3ade07b
 * (2023-10-10); `presence_penalty` throughout, `frequency_penalty` from a653f76 (2024-01-09);
 * `stop_words` (BYTES, dims `[-1]`, the preprocessing model's `STOP_WORDS_DICT`) from 3ade07b;
 * `guided_decoding_guide_type` / `guided_decoding_guide` (BYTES, dims `[1]`) from c1b90df
 * (2025-02-06). No stock ensemble at any of these versions declares `min_p`.
 */
export interface EnsembleInterface {
  readonly model: string;
  /** Names of every declared input. */
  readonly inputs: ReadonlySet<string>;
  /** The input the sampling seed travels in; undefined when the ensemble declares neither. */
  readonly seedInput: 'seed' | 'random_seed' | undefined;
  /** The ensemble reports the prompt's token count (`return_num_input_tokens` → `num_input_tokens`). */
  readonly countsInput: boolean;
  /** The ensemble reports each response's token count (`return_num_output_tokens` → `num_output_tokens`). */
  readonly countsOutput: boolean;
  /** The input top-k travels in (`runtime_top_k` on the oldest ensembles); undefined when neither. */
  readonly topKInput: 'top_k' | 'runtime_top_k' | undefined;
  /** The input top-p travels in (`runtime_top_p` on the oldest ensembles); undefined when neither. */
  readonly topPInput: 'top_p' | 'runtime_top_p' | undefined;
  /** Triton-level batch size (`max_batch_size`). */
  readonly maxBatchSize: number | undefined;
}

export function ensembleInterface(config: ModelConfig): EnsembleInterface {
  const inputs = new Set((config.input ?? []).map((i) => i.name));
  const outputs = new Set((config.output ?? []).map((o) => o.name));
  return {
    model: config.name,
    inputs,
    // `seed` first: a repository declaring both is one whose backend reads `seed`.
    seedInput: inputs.has('seed') ? 'seed' : inputs.has('random_seed') ? 'random_seed' : undefined,
    topKInput: inputs.has('top_k') ? 'top_k' : inputs.has('runtime_top_k') ? 'runtime_top_k' : undefined,
    topPInput: inputs.has('top_p') ? 'top_p' : inputs.has('runtime_top_p') ? 'runtime_top_p' : undefined,
    countsInput: inputs.has('return_num_input_tokens') && outputs.has('num_input_tokens'),
    countsOutput: inputs.has('return_num_output_tokens') && outputs.has('num_output_tokens'),
    maxBatchSize: config.max_batch_size,
  };
}
