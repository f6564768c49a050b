import type { GenerateRequest } from '../adapter.js';
import { SAMPLER_V1, checkSamplerProfile } from '../sampler-profile.js';
import type { CompletionRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for llama.cpp (ORCH-3058): seeded sampling with the values of
 * `SAMPLER_V1`; the same build, model and seed give the same stream in every process (FACTS:
 * greedy and F32 sampling are identical across processes and thread counts).
 *
 * | task field  | llama.cpp parameter                                              |
 * |-------------|------------------------------------------------------------------|
 * | seed        | `seed` (32-bit: seed mod 2^32; 0xFFFFFFFF means "random": → 0)    |
 * | determinism | strict and best_effort: the same parameters                      |
 * | (profile)   | temperature 0.8, top_k 40, top_p 0.95, min_p 0, repeat_penalty 1  |
 */
const LLAMA_RANDOM_SEED = 0xffff_ffff;

export function toCompletionRequest(req: GenerateRequest): CompletionRequest {
  checkSamplerProfile('llamacpp', req.samplerProfileVersion);
  const seed = req.seed % 2 ** 32;
  return {
    prompt: req.prompt,
    n_predict: req.maxTokens,
    stream: true,
    return_tokens: true,
    seed: seed === LLAMA_RANDOM_SEED ? 0 : seed,
    temperature: SAMPLER_V1.temperature,
    top_k: SAMPLER_V1.topK,
    top_p: SAMPLER_V1.topP,
    min_p: SAMPLER_V1.minP,
    repeat_penalty: SAMPLER_V1.repetitionPenalty,
    cache_prompt: req.cachePrompt,
    ignore_eos: req.ignoreEos ?? false,
    id_slot: -1,
  };
}
