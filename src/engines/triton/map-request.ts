import type { GenerateRequest } from '../adapter.js';
import type { RequestSupport } from '../request-support.js';
import type { SamplingOptions } from '../../domain/sampling.js';
import { OrchError } from '../../errors/orch-error.js';
import { checkSamplerProfile, samplingOf } from '../sampler-profile.js';
import type { EnsembleInterface } from './ensemble-interface.js';
import type { GenerateRequest as TritonGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for Triton / TensorRT-LLM: seeded sampling with the values of
 * `SAMPLER_V1` (or the task's own) through the ensemble's sampling inputs, naming only inputs
 * the ensemble declares (`EnsembleInterface`).
 *
 * | task field        | ensemble input                                                              |
 * |-------------------|-----------------------------------------------------------------------------|
 * | seed              | `seed` (u64), or `random_seed` on ensembles before the rename                |
 * | determinism       | strict and best_effort: the same parameters                                 |
 * | temperature       | `temperature` (profile: 0.8)                                                |
 * | top_k             | `top_k`, or `runtime_top_k` on the oldest ensembles (profile: 40)            |
 * | top_p             | `top_p`, or `runtime_top_p` on the oldest ensembles (profile: 0.95)          |
 * | repeat_penalty    | `repetition_penalty` (profile: 1)                                           |
 * | min_p             | `min_p`, only where declared (no stock ensemble does): sent only when set   |
 * | presence_penalty  | `presence_penalty`, sent only when set                                      |
 * | frequency_penalty | `frequency_penalty`, sent only when set                                     |
 * | stop              | `stop_words` (BYTES list → preprocessing `STOP_WORDS_DICT`)                  |
 * | response_format   | `guided_decoding_guide_type` `json` / `json_schema` (+ `guided_decoding_guide`) |
 * | messages          | `text_input`: the turns rendered by the model's own chat template           |
 * | ignore_eos        | `end_id: -1`                                                                |
 * | (counts)          | `return_num_input_tokens`, `return_num_output_tokens` where declared         |
 * | (echo)            | `exclude_input_in_output: true` where declared (else the model parameter)    |
 *
 * Fields the task leaves out add nothing, so a request without them is the same bytes as before
 * they existed. An input the request needs that the ensemble does not declare cannot be
 * honoured, and Triton would drop it silently: that is `INVALID_PARAMS` naming the field and
 * the input, before any request.
 */
export function toTritonRequest(
  req: GenerateRequest,
  ensemble: EnsembleInterface,
  prompt: string = req.prompt,
): TritonGenerateRequest {
  checkSamplerProfile('triton', req.samplerProfileVersion);
  const body: Record<string, string | number | boolean | readonly string[]> = {};
  const need = (input: string, value: string | number | boolean | readonly string[], why: string): void => {
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
  const s = samplingOf(req.sampling);
  const set = (k: keyof SamplingOptions) => req.sampling?.[k] !== undefined;
  const why = (k: keyof SamplingOptions, wire: string) => (set(k) ? wire : 'sampler profile v1');
  need('text_input', prompt, req.messages === undefined ? 'prompt' : 'messages');
  need('max_tokens', req.maxTokens, 'max_tokens');
  need('stream', true, 'streaming');
  if (ensemble.seedInput === undefined)
    throw new OrchError(
      'INVALID_PARAMS',
      `seed: ensemble '${ensemble.model}' declares neither 'seed' nor 'random_seed': seeded sampling (sampler profile v1) cannot be honoured`,
      { engine: 'triton' },
    );
  body[ensemble.seedInput] = req.seed;
  need(ensemble.topKInput ?? 'top_k', s.topK, why('topK', 'top_k'));
  need(ensemble.topPInput ?? 'top_p', s.topP, why('topP', 'top_p'));
  need('temperature', s.temperature, why('temperature', 'temperature'));
  need('repetition_penalty', s.repeatPenalty, why('repeatPenalty', 'repeat_penalty'));
  if (set('minP')) need('min_p', s.minP, 'min_p');
  if (set('presencePenalty')) need('presence_penalty', s.presencePenalty, 'presence_penalty');
  if (set('frequencyPenalty')) need('frequency_penalty', s.frequencyPenalty, 'frequency_penalty');
  if (req.stop !== undefined && req.stop.length > 0) need('stop_words', [...req.stop], 'stop');
  const guide = guideOf(req);
  if (guide !== undefined) {
    need('guided_decoding_guide_type', guide.type, 'response_format');
    if (guide.guide !== undefined) need('guided_decoding_guide', guide.guide, 'response_format');
  }
  // Streaming responses carry only new tokens either way; this keeps a non-streamed answer alike.
  may('exclude_input_in_output', true);
  if (ensemble.countsInput) body['return_num_input_tokens'] = true;
  if (ensemble.countsOutput) body['return_num_output_tokens'] = true;
  if (req.ignoreEos === true) need('end_id', -1, 'ignore_eos');
  return body;
}

/**
 * The guide of a `response_format`, as the backend's `getGuidedDecodingParamsFromTensors`
 * (tensorrtllm_backend `inflight_batcher_llm/src/utils.cc` at c2e65b88) names guide types:
 * `json` (any JSON, no guide) or `json_schema` (the schema's JSON text as the guide).
 */
export function guideOf(req: GenerateRequest): { type: 'json' | 'json_schema'; guide?: string } | undefined {
  const f = req.responseFormat;
  if (f === undefined || f.type === 'text') return undefined;
  if (f.type === 'json_object' || f.json_schema.schema === undefined) return { type: 'json' };
  return { type: 'json_schema', guide: JSON.stringify(f.json_schema.schema) };
}

/** What one Triton instance showed of itself, beyond its ensemble's inputs. */
export interface TritonExtras {
  /**
   * The `tensorrt_llm` model has guided decoding configured (`guided_decoding_backend` and
   * `xgrammar_tokenizer_info_path`); without it the backend builds no guided decoder.
   */
  readonly guidedDecoding: boolean;
  /** A chat template was found (the preprocessing model's `tokenizer_dir`), or why not. */
  readonly chat: true | string;
}

/** Why tools are refused on Triton, whatever the instance. */
export const NO_TOOLS =
  "Triton's ensemble returns plain text and the orchestrator has no tool-call parser for it; use an engine with tool calling (vLLM, llama.cpp)";

/**
 * What an instance whose ensemble is `ensemble` can honour: the sampling fields whose input it
 * declares, stop words and guided decoding where declared (and configured), chat where the
 * model's template was found; never tools.
 */
export function tritonSupport(ensemble: EnsembleInterface, extras: TritonExtras): RequestSupport {
  const has = (input: string | undefined) => input !== undefined && ensemble.inputs.has(input);
  const sampling = new Set<keyof SamplingOptions>();
  if (has('temperature')) sampling.add('temperature');
  if (has(ensemble.topKInput)) sampling.add('topK');
  if (has(ensemble.topPInput)) sampling.add('topP');
  if (has('min_p')) sampling.add('minP');
  if (has('repetition_penalty')) sampling.add('repeatPenalty');
  if (has('presence_penalty')) sampling.add('presencePenalty');
  if (has('frequency_penalty')) sampling.add('frequencyPenalty');
  const m = `ensemble '${ensemble.model}'`;
  const guided =
    !has('guided_decoding_guide_type') || !has('guided_decoding_guide')
      ? `${m} declares no 'guided_decoding_guide_type' / 'guided_decoding_guide' inputs`
      : !extras.guidedDecoding
        ? "the tensorrt_llm model has no guided decoding configured ('guided_decoding_backend' and 'xgrammar_tokenizer_info_path')"
        : new Set<'json_object' | 'json_schema'>(['json_object', 'json_schema']);
  return {
    sampling,
    stop: has('stop_words') ? true : `${m} declares no input 'stop_words'`,
    responseFormat: guided,
    messages: extras.chat,
    tools: NO_TOOLS,
  };
}
