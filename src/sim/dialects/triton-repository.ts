/**
 * The TensorRT-LLM model repository the Triton dialect serves (`inflight_batcher_llm`: an
 * `ensemble` of `preprocessing` → `tensorrt_llm` → `postprocessing`), in the two variants of the
 * stock ensemble that differ in what they declare:
 *
 * - `legacy`: triton-inference-server/tensorrtllm_backend `all_models/inflight_batcher_llm/`
 *   at cdc202ad2f5b377ac787936fe951359782adedbe (2024-11-05): the seed input is `random_seed`,
 *   there is no `exclude_input_in_output` input (869c2e0, 2024-11-19, added it) and no token
 *   count outputs.
 * - `current`: NVIDIA/TensorRT-LLM `triton_backend/all_models/inflight_batcher_llm/` at
 *   2a9abd9536aa62ad3e4b9314be9286b1b1be523b: `seed` (renamed in tensorrtllm_backend
 *   c2e65b88, 2025-05-13), `exclude_input_in_output`, the guided decoding inputs
 *   `guided_decoding_guide_type` / `guided_decoding_guide` (tensorrtllm_backend c1b90df,
 *   2025-02-06), and the `return_num_input_tokens` / `return_num_output_tokens` inputs with their
 *   `num_input_tokens` / `num_output_tokens` outputs.
 *
 * Both declare `stop_words`, `presence_penalty` and `frequency_penalty`, as every stock ensemble
 * since early 2024 does; neither declares `min_p`, which no stock ensemble has.
 *
 * `test/fixtures/triton/ensemble-config-*.json` are the same declarations rendered from those
 * `config.pbtxt` files; a test holds this file to them.
 */

import { TRITON_ENSEMBLES } from '../../config/schema.js';

export { TRITON_ENSEMBLES };
export type TritonEnsembleVariant = (typeof TRITON_ENSEMBLES)[number];

/** One declared tensor: name, Triton data type, dims without the batch dimension, optional. */
export type TensorDecl = readonly [name: string, dataType: string, dims: readonly number[], optional?: true];

const S = 'TYPE_STRING';
const I32 = 'TYPE_INT32';
const U64 = 'TYPE_UINT64';
const F32 = 'TYPE_FP32';
const F16 = 'TYPE_FP16';
const B = 'TYPE_BOOL';
const I64 = 'TYPE_INT64';
const one = [1] as const;
const any = [-1] as const;

/** Inputs both variants declare, before and after the ones that changed. */
const HEAD: readonly TensorDecl[] = [
  ['text_input', S, one],
  ['decoder_text_input', S, one, true],
  ['max_tokens', I32, one],
  ['num_return_sequences', I32, one, true],
  ['bad_words', S, any, true],
  ['stop_words', S, any, true],
];
const SAMPLING = (minTokens: string): readonly TensorDecl[] => [
  ['end_id', I32, one, true],
  ['pad_id', I32, one, true],
  ['top_k', I32, one, true],
  ['top_p', F32, one, true],
  ['temperature', F32, one, true],
  ['length_penalty', F32, one, true],
  ['repetition_penalty', F32, one, true],
  [minTokens, I32, one, true],
  ['presence_penalty', F32, one, true],
  ['frequency_penalty', F32, one, true],
];
const RETURN_FLAGS: readonly TensorDecl[] = [
  ['return_log_probs', B, one, true],
  ['return_context_logits', B, one, true],
  ['return_generation_logits', B, one, true],
];
const TAIL: readonly TensorDecl[] = [
  ['beam_width', I32, one, true],
  ['stream', B, one, true],
  ['prompt_embedding_table', F16, [-1, -1], true],
  ['prompt_table_extra_id', U64, one, true],
  ['prompt_vocab_size', I32, one, true],
  ['embedding_bias_words', S, any, true],
  ['embedding_bias_weights', F32, any, true],
  ['lora_task_id', U64, one, true],
  ['lora_weights', F16, [-1, -1], true],
  ['lora_config', I32, [-1, 3], true],
];
const OUTPUTS: readonly TensorDecl[] = [
  ['text_output', S, any],
  ['cum_log_probs', F32, any],
  ['output_log_probs', F32, [-1, -1]],
  // `${logits_datatype}` in the template; TYPE_FP32 is what the stock fill-in gives.
  ['context_logits', F32, [-1, -1]],
  ['generation_logits', F32, [-1, -1, -1]],
  ['batch_index', I32, one],
  ['sequence_index', I32, one],
];
const PERF_OUTPUTS: readonly TensorDecl[] = [
  ['kv_cache_alloc_new_blocks', I32, one],
  ['kv_cache_reused_blocks', I32, one],
  // The template lists this output twice; Triton's config keeps one per name.
  ['kv_cache_alloc_total_blocks', I32, one],
  ['arrival_time_ns', I64, one],
  ['first_scheduled_time_ns', I64, one],
  ['first_token_time_ns', I64, one],
  ['last_token_time_ns', I64, one],
  ['acceptance_rate', F32, one],
  ['total_accepted_draft_tokens', I32, one],
  ['total_draft_tokens', I32, one],
];

export interface EnsembleDecl {
  readonly inputs: readonly TensorDecl[];
  readonly outputs: readonly TensorDecl[];
  /** The input the seed travels in. */
  readonly seedInput: 'seed' | 'random_seed';
}

export const ENSEMBLES: Readonly<Record<TritonEnsembleVariant, EnsembleDecl>> = {
  legacy: {
    seedInput: 'random_seed',
    inputs: [...HEAD, ...SAMPLING('min_length'), ['random_seed', U64, one, true], ...RETURN_FLAGS, ...TAIL],
    outputs: OUTPUTS,
  },
  current: {
    seedInput: 'seed',
    inputs: [
      ...HEAD,
      ['exclude_input_in_output', B, one, true],
      ...SAMPLING('min_tokens'),
      ['seed', U64, one, true],
      ...RETURN_FLAGS,
      ['return_perf_metrics', B, one, true],
      ['return_num_input_tokens', B, one, true],
      ['return_num_output_tokens', B, one, true],
      ...TAIL,
      ['guided_decoding_guide_type', S, one, true],
      ['guided_decoding_guide', S, one, true],
    ],
    outputs: [...OUTPUTS, ...PERF_OUTPUTS, ['num_input_tokens', I32, one], ['num_output_tokens', I32, one]],
  },
};

/** Inputs declared with `allow_ragged_batch: true`. */
export const RAGGED_INPUTS: ReadonlySet<string> = new Set([
  'lora_weights',
  'lora_config',
  'guided_decoding_guide_type',
  'guided_decoding_guide',
]);

/**
 * The `preprocessing` model (tokenizer, Python backend) as of the legacy repository; newer
 * repositories add multimodal inputs (`IMAGE_BYTES`, …) the simulator does not model.
 */
export const PREPROCESSING: {
  readonly inputs: readonly TensorDecl[];
  readonly outputs: readonly TensorDecl[];
} = {
  inputs: [
    ['QUERY', S, one],
    ['DECODER_QUERY', S, one, true],
    ['REQUEST_OUTPUT_LEN', I32, one],
    ['BAD_WORDS_DICT', S, any, true],
    ['STOP_WORDS_DICT', S, any, true],
    ['EMBEDDING_BIAS_WORDS', S, any, true],
    ['EMBEDDING_BIAS_WEIGHTS', F32, any, true],
    ['END_ID', I32, one, true],
    ['PAD_ID', I32, one, true],
    ['PROMPT_TABLE_EXTRA_ID', U64, one, true],
  ],
  outputs: [
    ['INPUT_ID', I32, any],
    ['REQUEST_INPUT_LEN', I32, one],
    ['DECODER_INPUT_ID', I32, any],
    ['REQUEST_DECODER_INPUT_LEN', I32, one],
    ['BAD_WORDS_IDS', I32, [2, -1]],
    ['STOP_WORDS_IDS', I32, [2, -1]],
    ['EMBEDDING_BIAS', F32, any],
    ['REQUEST_OUTPUT_LEN', I32, any],
    ['OUT_END_ID', I32, one],
    ['OUT_PAD_ID', I32, one],
    ['OUT_PROMPT_TABLE_EXTRA_IDS', U64, any],
  ],
};

/** The data type names of model metadata (`GET /v2/models/{m}`): `TYPE_STRING` is `BYTES`, etc. */
export function metadataType(dataType: string): string {
  return dataType === 'TYPE_STRING' ? 'BYTES' : dataType.replace(/^TYPE_/, '');
}

/** A declared input as `GET /v2/models/{m}/config` renders it (core `ModelConfigToJson`). */
export function configInput([name, dataType, dims, optional]: TensorDecl): Record<string, unknown> {
  return {
    name,
    data_type: dataType,
    format: 'FORMAT_NONE',
    dims,
    is_shape_tensor: false,
    allow_ragged_batch: RAGGED_INPUTS.has(name),
    optional: optional === true,
    is_non_linear_format_io: false,
  };
}

export function configOutput([name, dataType, dims]: TensorDecl): Record<string, unknown> {
  return {
    name,
    data_type: dataType,
    dims,
    label_filename: '',
    is_shape_tensor: false,
    is_non_linear_format_io: false,
  };
}
