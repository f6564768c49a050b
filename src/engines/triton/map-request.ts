import type { GenerateRequest } from '../adapter.js';
import { SAMPLER_V1, checkSamplerProfile } from '../sampler-profile.js';
import type { GenerateRequest as TritonGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for Triton / TensorRT-LLM: seeded sampling with the values of
 * `SAMPLER_V1` through the ensemble's sampling inputs.
 *
 * | task field  | ensemble input                                                  |
 * |-------------|-----------------------------------------------------------------|
 * | seed        | `random_seed` (u64)                                              |
 * | determinism | strict and best_effort: the same parameters                     |
 * | (profile)   | temperature 0.8, top_k 40, top_p 0.95, repetition_penalty 1      |
 * | ignore_eos  | `end_id: -1`                                                     |
 */
export function toTritonRequest(req: GenerateRequest): TritonGenerateRequest {
  checkSamplerProfile('triton', req.samplerProfileVersion);
  return {
    text_input: req.prompt,
    max_tokens: req.maxTokens,
    stream: true,
    random_seed: req.seed,
    top_k: SAMPLER_V1.topK,
    top_p: SAMPLER_V1.topP,
    temperature: SAMPLER_V1.temperature,
    repetition_penalty: SAMPLER_V1.repetitionPenalty,
    exclude_input_in_output: true,
    ...(req.ignoreEos === true ? { end_id: -1 } : {}),
  };
}
