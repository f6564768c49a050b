import type { GenerateRequest } from '../adapter.js';
import { OrchError } from '../../errors/orch-error.js';
import { SAMPLER_V1, checkSamplerProfile } from '../sampler-profile.js';
import type { EnsembleInterface } from './ensemble-interface.js';
import type { GenerateRequest as TritonGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for Triton / TensorRT-LLM: seeded sampling with the values of
 * `SAMPLER_V1` through the ensemble's sampling inputs, naming only inputs the ensemble declares
 * (`EnsembleInterface`).
 *
 * | task field  | ensemble input                                                           |
 * |-------------|--------------------------------------------------------------------------|
 * | seed        | `seed` (u64), or `random_seed` on ensembles before the rename             |
 * | determinism | strict and best_effort: the same parameters                              |
 * | (profile)   | temperature 0.8, top_k 40, top_p 0.95, repetition_penalty 1               |
 * | ignore_eos  | `end_id: -1`                                                              |
 * | (counts)    | `return_num_input_tokens`, `return_num_output_tokens` where declared      |
 * | (echo)      | `exclude_input_in_output: true` where declared (else the model parameter) |
 *
 * An input the profile needs that the ensemble does not declare cannot be honoured, and Triton
 * would drop it silently: that is `INVALID_PARAMS` naming the input, before any request.
 */
export function toTritonRequest(req: GenerateRequest, ensemble: EnsembleInterface): TritonGenerateRequest {
  checkSamplerProfile('triton', req.samplerProfileVersion);
  const body: Record<string, string | number | boolean> = {};
  const need = (input: string, value: string | number | boolean, why: string): void => {
    if (!ensemble.inputs.has(input))
      throw new OrchError(
        'INVALID_PARAMS',
        `${why}: ensemble '${ensemble.model}' declares no input '${input}', so Triton would drop it`,
        { engine: 'triton' },
      );
    body[input] = value;
  };
  const may = (input: string, value: number | boolean): void => {
    if (ensemble.inputs.has(input)) body[input] = value;
  };
  need('text_input', req.prompt, 'prompt');
  need('max_tokens', req.maxTokens, 'max_tokens');
  need('stream', true, 'streaming');
  if (ensemble.seedInput === undefined)
    throw new OrchError(
      'INVALID_PARAMS',
      `seed: ensemble '${ensemble.model}' declares neither 'seed' nor 'random_seed': seeded sampling (sampler profile v1) cannot be honoured`,
      { engine: 'triton' },
    );
  body[ensemble.seedInput] = req.seed;
  need('top_k', SAMPLER_V1.topK, 'sampler profile v1');
  need('top_p', SAMPLER_V1.topP, 'sampler profile v1');
  need('temperature', SAMPLER_V1.temperature, 'sampler profile v1');
  need('repetition_penalty', SAMPLER_V1.repetitionPenalty, 'sampler profile v1');
  // Streaming responses carry only new tokens either way; this keeps a non-streamed answer alike.
  may('exclude_input_in_output', true);
  if (ensemble.countsInput) body['return_num_input_tokens'] = true;
  if (ensemble.countsOutput) body['return_num_output_tokens'] = true;
  if (req.ignoreEos === true) need('end_id', -1, 'ignore_eos');
  return body;
}
