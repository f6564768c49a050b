import type { ResponseFormat } from '../../domain/sampling.js';
import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile, samplingOf } from '../sampler-profile.js';
import type { ChatRequest, Grammar, GenerateRequest as TgiGenerateRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for TGI: seeded sampling (`do_sample: true`) with the values of
 * `SAMPLER_V1`, overridden by the sampling fields the task set. Plain prompts go to
 * `/generate_stream` (`GenerateParameters`, `router/src/lib.rs`), chat turns to the Messages API
 * `POST /v1/chat/completions` (`ChatRequest`), whose parameter set is smaller. Releases are
 * huggingface/text-generation-inference tags; `support.ts` refuses what a release lacks.
 *
 * | task field          | `/generate_stream` `parameters`                | Messages API                                  |
 * |---------------------|------------------------------------------------|-----------------------------------------------|
 * | seed                | `seed` (u64)                                   | `seed`                                        |
 * | determinism         | strict and best_effort: the same parameters    | the same                                      |
 * | temperature         | `temperature` (0.8); 0: `do_sample: false`, no temperature/top_k/top_p (greedy; TGI refuses `temperature <= 0`) | `temperature` (0.8); TGI reads 0 as greedy (v2.3.0+) |
 * | top_p               | `top_p` (0.95); 1: not sent (TGI refuses `top_p >= 1`; absent is 1) | `top_p` (0.95), same rule  |
 * | top_k               | `top_k` (40); 0: not sent (no limit; TGI refuses `top_k <= 0`) | refused: no such field (profile's 40 does not apply) |
 * | repeat_penalty      | `repetition_penalty` (1)                       | `presence_penalty = repeat_penalty - 2`: TGI sets `repetition_penalty = presence_penalty + 2` (`ChatRequest::try_into_generate`); not sent when unset |
 * | frequency_penalty   | `frequency_penalty` (v1.4.1+), only when set   | `frequency_penalty`, only when set            |
 * | presence_penalty    | refused: no such parameter                     | refused: TGI's is the repetition-penalty offset above |
 * | min_p               | refused: no such parameter                     | refused                                       |
 * | stop                | `stop` (default `[]`; at most `/info` `max_stop_sequences`) | `stop`, only when set            |
 * | response_format     | `grammar: {type: "json", value: schema}` (v1.4.1+) | `response_format: {type: "json", value: schema}` |
 * | json_object         | `{"type": "object"}` as the schema, before v2.3.0 only (later TGI needs `properties`) | refused (chat needs v2.3.0) |
 * | messages            | —                                              | `messages` as given (v2.3.0+), `model: "tgi"`, `stream_options.include_usage` |
 * | tools, tool_choice  | —                                              | as given (v3.2.0+): none, auto, required, a named function |
 *
 * TGI keeps a stop sequence in the generated text (`StopSequenceCriteria`, finish reason
 * `stop_sequence`); the adapter removes it (`stop-trim.ts`), as the request contract says. TGI
 * has no `ignore_eos`; a task asking for it still stops at end-of-sequence on TGI.
 */
export function toTgiRequest(req: GenerateRequest): TgiGenerateRequest {
  checkSamplerProfile('tgi', req.samplerProfileVersion);
  const s = samplingOf(req.sampling);
  const greedy = s.temperature === 0;
  const grammar = grammarOf(req.responseFormat);
  return {
    inputs: req.prompt,
    parameters: {
      max_new_tokens: req.maxTokens,
      seed: req.seed,
      do_sample: !greedy,
      ...(greedy ? {} : { temperature: s.temperature }),
      ...(greedy || s.topK === 0 ? {} : { top_k: s.topK }),
      ...(greedy || s.topP >= 1 ? {} : { top_p: s.topP }),
      details: true,
      return_full_text: false,
      decoder_input_details: false,
      repetition_penalty: s.repeatPenalty,
      ...(req.sampling?.frequencyPenalty === undefined ? {} : { frequency_penalty: s.frequencyPenalty }),
      stop: [...(req.stop ?? [])],
      ...(grammar === undefined ? {} : { grammar }),
    },
  };
}

/** The Messages API request of a chat task (streamed, with usage for the prompt tokens). */
export function toTgiChatRequest(req: GenerateRequest): ChatRequest {
  checkSamplerProfile('tgi', req.samplerProfileVersion);
  const s = samplingOf(req.sampling);
  const grammar = grammarOf(req.responseFormat);
  const repeat = req.sampling?.repeatPenalty;
  return {
    model: 'tgi',
    messages: req.messages ?? [],
    max_tokens: req.maxTokens,
    seed: req.seed,
    temperature: s.temperature,
    ...(s.topP >= 1 ? {} : { top_p: s.topP }),
    ...(req.sampling?.frequencyPenalty === undefined ? {} : { frequency_penalty: s.frequencyPenalty }),
    ...(repeat === undefined ? {} : { presence_penalty: repeat - 2 }),
    ...(req.stop === undefined || req.stop.length === 0 ? {} : { stop: [...req.stop] }),
    ...(grammar === undefined ? {} : { response_format: grammar }),
    ...(req.tools === undefined || req.tools.length === 0 ? {} : { tools: req.tools }),
    ...(req.toolChoice === undefined ? {} : { tool_choice: req.toolChoice }),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/** `response_format` as TGI's JSON grammar; `json_object` is any object (TGI before v2.3.0). */
function grammarOf(format: ResponseFormat | undefined): Grammar | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json', value: { type: 'object' } };
  return { type: 'json', value: format.json_schema.schema ?? { type: 'object' } };
}
