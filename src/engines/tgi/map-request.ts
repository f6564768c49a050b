import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile } from '../sampler-profile.js';
import type { GenerateRequest as TgiGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for TGI: greedy (`do_sample: false`; TGI refuses `temperature: 0`, so no
 * temperature is sent), neutral repetition penalty, and the task's seed.
 *
 * | task field  | TGI parameter                                      |
 * |-------------|----------------------------------------------------|
 * | seed        | `parameters.seed` (u64)                            |
 * | determinism | strict and best_effort: `do_sample: false`          |
 * | (fixed)     | `repetition_penalty` 1, `details: true`, no stop    |
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
      do_sample: false,
      details: true,
      return_full_text: false,
      decoder_input_details: false,
      repetition_penalty: 1,
      stop: [],
    },
  };
}
