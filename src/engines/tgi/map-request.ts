import type { GenerateRequest } from '../adapter.js';
import { SAMPLER_V1, checkSamplerProfile } from '../sampler-profile.js';
import type { GenerateRequest as TgiGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for TGI: seeded sampling (`do_sample: true`) with the values of
 * `SAMPLER_V1`.
 *
 * | task field  | TGI parameter                                                  |
 * |-------------|----------------------------------------------------------------|
 * | seed        | `parameters.seed` (u64)                                         |
 * | determinism | strict and best_effort: the same parameters                    |
 * | (profile)   | temperature 0.8, top_k 40, top_p 0.95, repetition_penalty 1     |
 *
 * TGI has no `ignore_eos`; a task asking for it still stops at end-of-sequence on TGI.
 */
export function toTgiRequest(req: GenerateRequest): TgiGenerateRequest {
  checkSamplerProfile('tgi', req.samplerProfileVersion);
  return {
    inputs: req.prompt,
    parameters: {
      max_new_tokens: req.maxTokens,
      seed: req.seed,
      do_sample: true,
      temperature: SAMPLER_V1.temperature,
      top_k: SAMPLER_V1.topK,
      top_p: SAMPLER_V1.topP,
      details: true,
      return_full_text: false,
      decoder_input_details: false,
      repetition_penalty: SAMPLER_V1.repetitionPenalty,
      stop: [],
    },
  };
}
