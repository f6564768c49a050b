import type { ResponseFormat } from '../../domain/sampling.js';
import type { GenerateRequest } from '../adapter.js';
import { checkSamplerProfile, samplingOf } from '../sampler-profile.js';
import type { ChatCompletionRequest, CompletionRequest, VllmResponseFormat } from './wire-types.js';

/**
 * Sampler profile `v1` for vLLM: seeded sampling with the values of `SAMPLER_V1` and every
 * penalty neutral, each overridden by the task's own sampling fields. vLLM seeds a per-request
 * generator, so the stream depends only on the seed and the parameters (in single-slot mode;
 * batch composition can change kernels' numerics otherwise). Every parameter below is a vLLM
 * `SamplingParams` field that both `/v1/completions` and `/v1/chat/completions` accept
 * (`completion/protocol.py`, `chat_completion/protocol.py`, IBM/vllm `3302dc7f9c09`).
 *
 * | task field         | vLLM parameter                                  | profile v1 |
 * |--------------------|-------------------------------------------------|------------|
 * | seed               | `seed` (passed as is)                           |            |
 * | determinism        | strict and best_effort: the same parameters     |            |
 * | temperature        | `temperature`                                   | 0.8        |
 * | top_p              | `top_p`                                         | 0.95       |
 * | top_k              | `top_k`                                         | 40         |
 * | min_p              | `min_p`                                         | 0          |
 * | repeat_penalty     | `repetition_penalty`                            | 1          |
 * | presence_penalty   | `presence_penalty`                              | 0          |
 * | frequency_penalty  | `frequency_penalty`                             | 0          |
 * | stop               | `stop` (only when set; the string is not output)|            |
 * | response_format    | `response_format` (only when set; structured outputs) |      |
 * | messages           | `/v1/chat/completions` `messages`               |            |
 * | tools, tool_choice | `tools`, `tool_choice` (chat only, passed as is) |           |
 */
export function toVllmRequest(req: GenerateRequest, model: string): CompletionRequest {
  checkSamplerProfile('vllm', req.samplerProfileVersion);
  const s = samplingOf(req.sampling);
  // Key order is the wire order: requests without the new fields stay byte-identical.
  const body: CompletionRequest = {
    model,
    prompt: req.prompt,
    max_tokens: req.maxTokens,
    stream: true,
    stream_options: { include_usage: true, continuous_usage_stats: true },
    seed: req.seed,
    temperature: s.temperature,
    top_p: s.topP,
    top_k: s.topK,
    min_p: s.minP,
    repetition_penalty: s.repeatPenalty,
    presence_penalty: s.presencePenalty,
    frequency_penalty: s.frequencyPenalty,
    ignore_eos: req.ignoreEos ?? false,
  };
  if (req.stop !== undefined && req.stop.length > 0) body.stop = req.stop;
  if (req.responseFormat !== undefined) body.response_format = vllmResponseFormat(req.responseFormat);
  return body;
}

/** The chat twin of `toVllmRequest`: the same sampling, `messages` and any tools for `prompt`. */
export function toVllmChatRequest(req: GenerateRequest, model: string): ChatCompletionRequest {
  const { prompt: _prompt, ...rest } = toVllmRequest(req, model);
  const body: ChatCompletionRequest = { ...rest, messages: req.messages ?? [] };
  if (req.tools !== undefined && req.tools.length > 0) body.tools = req.tools;
  if (req.toolChoice !== undefined) body.tool_choice = req.toolChoice;
  return body;
}

/**
 * vLLM's `JsonSchemaResponseFormat` requires `name` (OpenAI's too); a task may leave it out, so a
 * neutral one is filled in. The schema travels under OpenAI's key `schema`.
 */
function vllmResponseFormat(f: ResponseFormat): VllmResponseFormat {
  if (f.type !== 'json_schema') return { type: f.type };
  const { name, schema, strict } = f.json_schema;
  return {
    type: 'json_schema',
    json_schema: {
      name: name ?? 'response',
      ...(schema !== undefined ? { schema } : {}),
      ...(strict !== undefined ? { strict } : {}),
    },
  };
}
