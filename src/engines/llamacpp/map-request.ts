import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile } from '../sampler-profile.js';
import type { CompletionRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for llama.cpp (ORCH-3058): greedy decoding with every stochastic or
 * history-dependent sampler disabled, so a replica set yields identical streams for identical
 * `{prompt, seed}`. The seed is still passed, so the profile stays valid if a later version
 * samples.
 *
 * | task field        | llama.cpp parameter                                            |
 * |-------------------|----------------------------------------------------------------|
 * | seed              | `seed` (32-bit; 0xFFFFFFFF means "random" in llama.cpp: avoided) |
 * | determinism       | strict and best_effort both: temperature 0, top_k 1            |
 * | (fixed)           | top_p 1, min_p 0, repeat_penalty 1                             |
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
    temperature: 0,
    top_k: 1,
    top_p: 1,
    min_p: 0,
    repeat_penalty: 1,
    cache_prompt: req.cachePrompt,
    ignore_eos: req.ignoreEos ?? false,
    id_slot: -1,
  };
}
