import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile } from '../sampler-profile.js';
import type { CompletionRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for vLLM: greedy (temperature 0 makes vLLM pick the argmax), every
 * penalty neutral, the task's seed passed through so a sampling profile stays reproducible.
 *
 * | task field  | vLLM parameter                                                     |
 * |-------------|--------------------------------------------------------------------|
 * | seed        | `seed` (64-bit is accepted; the task seed is passed as is)          |
 * | determinism | strict and best_effort: temperature 0, top_k -1 (off), top_p 1       |
 * | (fixed)     | min_p 0, repetition/presence/frequency penalties neutral             |
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
    temperature: 0,
    top_p: 1,
    top_k: -1,
    min_p: 0,
    repetition_penalty: 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    ignore_eos: req.ignoreEos ?? false,
  };
}
