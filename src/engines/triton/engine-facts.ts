import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { EngineConfigFile, ModelConfig } from './wire-types.js';

/**
 * What the TensorRT-LLM model of a Triton repository says about its engine. Neither the stock
 * ensemble nor the stock `tensorrt_llm` model declares a TensorRT-LLM version or a maximum
 * sequence length (NVIDIA/TensorRT-LLM `triton_backend/all_models/inflight_batcher_llm/
 * tensorrt_llm/config.pbtxt` at 2a9abd95: its parameters are `gpt_model_path`, `gpt_model_type`,
 * `max_tokens_in_paged_kv_cache`, `max_attention_window_size`, …). The engine does: the
 * `config.json` TensorRT-LLM writes into the engine directory (`gpt_model_path`) holds the
 * `version` that built it and `build_config.max_seq_len`. That file is read where it is on this
 * host's filesystem; elsewhere both stay unknown and nothing is made up.
 */
export interface TrtllmFacts {
  /** TensorRT-LLM version that built the engine; undefined when nothing states it. */
  readonly version: string | undefined;
  /** The engine's maximum sequence length (prompt + generated tokens). */
  readonly maxSeqLen: number | undefined;
  /**
   * In-flight (continuous) batching: `gpt_model_type` `inflight_batching` or
   * `inflight_fused_batching`; `V1` is static batching (backend `getBatchingTypeFromParams`).
   */
  readonly inflightBatching: boolean;
  /**
   * Guided decoding is configured: `guided_decoding_backend` (`xgrammar`) and
   * `xgrammar_tokenizer_info_path` are both filled in. Without them the backend builds no guided
   * decoder (tensorrtllm_backend `inflight_batcher_llm/src/model_instance_state.cc`
   * `getGuidedDecodingConfigFromParams` at c2e65b88d85255be30cf50440a91662abeb497dd).
   */
  readonly guidedDecoding: boolean;
}

/** A parameter's value, unless it is an unfilled `${…}` placeholder of the stock template. */
export function parameter(config: ModelConfig, key: string): string | undefined {
  const v = config.parameters?.[key]?.string_value?.trim();
  return v === undefined || v === '' || /^\$\{[^}]*\}$/.test(v) ? undefined : v;
}

/** The engine directory (`gpt_model_path`), when it is an absolute path. */
export function engineDirOf(config: ModelConfig): string | undefined {
  const dir = parameter(config, 'gpt_model_path');
  return dir !== undefined && isAbsolute(dir) ? dir : undefined;
}

/** The version and limits in an engine's `config.json`; fields that are not there stay undefined. */
export function parseEngineConfig(text: string): { version?: string; maxSeqLen?: number } {
  let c: EngineConfigFile;
  try {
    c = JSON.parse(text) as EngineConfigFile;
  } catch {
    return {};
  }
  const version = typeof c.version === 'string' && c.version.trim() !== '' ? c.version.trim() : undefined;
  const seq = c.build_config?.max_seq_len;
  const maxSeqLen = typeof seq === 'number' && Number.isInteger(seq) && seq > 0 ? seq : undefined;
  return { ...(version === undefined ? {} : { version }), ...(maxSeqLen === undefined ? {} : { maxSeqLen }) };
}

/** Facts of the `tensorrt_llm` model whose configuration is `config`. */
export async function readEngineFacts(
  config: ModelConfig,
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<TrtllmFacts> {
  const type = parameter(config, 'gpt_model_type');
  const inflightBatching = type === 'inflight_batching' || type === 'inflight_fused_batching';
  const dir = engineDirOf(config);
  const text = dir === undefined ? undefined : await read(join(dir, 'config.json')).catch(() => undefined);
  const facts = text === undefined ? {} : parseEngineConfig(text);
  const guidedDecoding =
    parameter(config, 'guided_decoding_backend') === 'xgrammar' &&
    parameter(config, 'xgrammar_tokenizer_info_path') !== undefined;
  return { version: facts.version, maxSeqLen: facts.maxSeqLen, inflightBatching, guidedDecoding };
}
