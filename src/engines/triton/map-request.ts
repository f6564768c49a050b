import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile } from '../sampler-profile.js';
import type { GenerateRequest as TritonGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for Triton / TensorRT-LLM: greedy through `top_k: 1` (TRT-LLM's greedy
 * path), `top_p: 0` (off), temperature 1 (neutral at top_k 1), neutral repetition penalty, and
 * the task's seed as `random_seed` (u64).
 *
 * | task field  | ensemble input                                     |
 * |-------------|----------------------------------------------------|
 * | seed        | `random_seed`                                       |
 * | determinism | strict and best_effort: top_k 1, top_p 0            |
 * | ignore_eos  | `end_id: -1`                                        |
 */
export function toTritonRequest(req: GenerateRequest): TritonGenerateRequest {
  checkSamplerProfile('triton', req.samplerProfileVersion);
  return {
    text_input: req.prompt,
    max_tokens: req.maxTokens,
    stream: true,
    random_seed: req.seed,
    top_k: 1,
    top_p: 0,
    temperature: 1,
    repetition_penalty: 1,
    exclude_input_in_output: true,
    ...(req.ignoreEos === true ? { end_id: -1 } : {}),
  };
}
