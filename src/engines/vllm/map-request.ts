import type { GenerateRequest } from '../adapter.js';
import { SAMPLER_V1, checkSamplerProfile } from '../sampler-profile.js';
import type { CompletionRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for vLLM: seeded sampling with the values of `SAMPLER_V1` and every
 * penalty neutral. vLLM seeds a per-request generator, so the stream depends only on the seed
 * (in single-slot mode; batch composition can change kernels' numerics otherwise).
 *
 * | task field  | vLLM parameter                                                  |
 * |-------------|-----------------------------------------------------------------|
 * | seed        | `seed` (passed as is)                                            |
 * | determinism | strict and best_effort: the same parameters                     |
 * | (profile)   | temperature 0.8, top_k 40, top_p 0.95, min_p 0, penalties neutral |
 */
export function toVllmRequest(req: GenerateRequest, model: string): CompletionRequest {
  checkSamplerProfile('vllm', req.samplerProfileVersion);
  return {
    model,
    prompt: req.prompt,
    max_tokens: req.maxTokens,
    stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true },
    seed: req.seed,
    temperature: SAMPLER_V1.temperature,
    top_p: SAMPLER_V1.topP,
    top_k: SAMPLER_V1.topK,
    min_p: SAMPLER_V1.minP,
    repetition_penalty: SAMPLER_V1.repetitionPenalty,
    presence_penalty: 0,
    frequency_penalty: 0,
    ignore_eos: req.ignoreEos ?? false,
  };
}
