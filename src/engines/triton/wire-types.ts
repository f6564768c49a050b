/**
 * Triton Inference Server wire types, from Triton's own sources:
 * - KServe v2 REST (`/v2`, `/v2/health/ready`, `/v2/models/{m}[/ready]`, `/v2/models/{m}/infer`);
 * - the model configuration extension, `GET /v2/models/{m}/config`
 *   (triton-inference-server/server `docs/protocol/extension_model_configuration.md`): the JSON
 *   form of the `ModelConfig` protobuf with proto field names and int64 fields as numbers
 *   (triton-inference-server/core `src/model_config_utils.cc` `ModelConfigToJson`);
 * - the generate extension (`docs/protocol/extension_generate.md`; server `src/http_server.cc`
 *   `ConvertGenerateRequest` / `ExactMappingOutput`): a flat JSON object whose keys that name a
 *   declared input become that tensor and all others request parameters; each response renders
 *   every output tensor, one-element tensors as plain values.
 */

/**
 * A generate request body: `text_input` and one value per declared input the adapter sets. A
 * JSON array is a one-dimensional tensor (`ExactMappingInput`): how `stop_words` (dims `[-1]`)
 * travels.
 */
export type GenerateRequest = Readonly<Record<string, string | number | boolean | readonly string[]>>;

/**
 * One generate response (one SSE `data:` event per response on `generate_stream`). With the
 * TensorRT-LLM ensemble, `text_output` holds the text of this response's tokens, and, where the
 * request asked for them, `num_input_tokens` (the prompt's token count) and `num_output_tokens`
 * (tokens in this response, all beams; NVIDIA/TensorRT-LLM
 * `triton_backend/inflight_batcher_llm/src/model_instance_state.cc` `fillTritonResponse`).
 */
export interface GenerateResponse {
  model_name: string;
  model_version: string;
  text_output?: string;
  num_input_tokens?: number;
  num_output_tokens?: number;
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

/** A declared input or output of a model configuration (`ModelInput` / `ModelOutput`). */
export interface ModelTensor {
  name: string;
  data_type: string;
  dims: number[];
  /** Inputs only; absent (false) for required inputs. */
  optional?: boolean;
}

export interface ModelConfig {
  name: string;
  platform?: string;
  backend?: string;
  max_batch_size?: number;
  input?: ModelTensor[];
  output?: ModelTensor[];
  parameters?: Record<string, { string_value: string }>;
}

export interface InferResponse {
  outputs: { name: string; shape: number[]; data: number[] }[];
}

/**
 * The `config.json` TensorRT-LLM writes next to a built engine (NVIDIA/TensorRT-LLM
 * `tensorrt_llm/builder.py` `EngineConfig.to_dict`, `Engine.save`; stored version at
 * 008b2b8d23af95e4e19fa6f354f9c5f6349b2bfc): the TensorRT-LLM version that built it and the
 * engine's build limits. Only the fields the adapter reads.
 */
export interface EngineConfigFile {
  version?: unknown;
  build_config?: { max_seq_len?: unknown; max_batch_size?: unknown };
}
