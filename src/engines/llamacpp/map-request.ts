import type { GenerateRequest } from '../adapter.js';
import { ALL_SAMPLING, checkSupport } from '../request-support.js';
import { checkSamplerProfile, samplingOf } from '../sampler-profile.js';
import type { ChatCompletionRequest, CompletionRequest } from './wire-types.js';

/**
 * Sampler profile `v1` for llama.cpp (ORCH-3058): seeded sampling with the values of
 * `SAMPLER_V1` unless the task sets its own; the same build, model, parameters and seed give the
 * same stream in every process (FACTS: greedy and F32 sampling are identical across processes
 * and thread counts).
 *
 * | task field        | llama.cpp `/completion` parameter (profile v1 value)              |
 * |-------------------|-------------------------------------------------------------------|
 * | seed              | `seed` (32-bit: seed mod 2^32; 0xFFFFFFFF means "random": → 0)     |
 * | determinism       | strict and best_effort: the same parameters                       |
 * | temperature       | `temperature` (0.8)                                               |
 * | top_k, top_p      | `top_k` (40), `top_p` (0.95)                                       |
 * | min_p             | `min_p` (0)                                                       |
 * | repeat_penalty    | `repeat_penalty` (1)                                              |
 * | presence_penalty  | `presence_penalty` (0), sent only when set                        |
 * | frequency_penalty | `frequency_penalty` (0), sent only when set                       |
 * | stop              | `stop`                                                            |
 * | response_format   | `json_schema` (json_object: `{"type":"object"}`), turned into a grammar by the server (`server-schema.cpp`) |
 * | messages          | `POST /apply-template` first: the model's own chat template (`--jinja`, on by default) |
 */
const LLAMA_RANDOM_SEED = 0xffff_ffff;

export function toCompletionRequest(req: GenerateRequest, prompt: string = req.prompt): CompletionRequest {
  checkSamplerProfile('llamacpp', req.samplerProfileVersion);
  const seed = req.seed % 2 ** 32;
  const s = samplingOf(req.sampling);
  const body: CompletionRequest = {
    prompt,
    n_predict: req.maxTokens,
    stream: true,
    return_tokens: true,
    seed: seed === LLAMA_RANDOM_SEED ? 0 : seed,
    temperature: s.temperature,
    top_k: s.topK,
    top_p: s.topP,
    min_p: s.minP,
    repeat_penalty: s.repeatPenalty,
    cache_prompt: req.cachePrompt,
    ignore_eos: req.ignoreEos ?? false,
    id_slot: -1,
  };
  // Set only when the task sets them, so profile-v1 requests stay what they always were.
  if (req.sampling?.presencePenalty !== undefined) body.presence_penalty = s.presencePenalty;
  if (req.sampling?.frequencyPenalty !== undefined) body.frequency_penalty = s.frequencyPenalty;
  if (req.stop !== undefined && req.stop.length > 0) body.stop = [...req.stop];
  const schema = jsonSchemaOf(req);
  if (schema !== undefined) body.json_schema = schema;
  return body;
}

/** The JSON schema a response format constrains output to; `json_object` is any object. */
export function jsonSchemaOf(req: GenerateRequest): Readonly<Record<string, unknown>> | undefined {
  const f = req.responseFormat;
  if (f === undefined || f.type === 'text') return undefined;
  if (f.type === 'json_object') return { type: 'object' };
  return f.json_schema.schema ?? { type: 'object' };
}

/**
 * llama-server honours every sampling field, stop strings and JSON schemas on `/completion`, and
 * chat through its template. Tools need its chat endpoint's tool-call parser, the Jinja template
 * engine (`--jinja`, the server's default; `--no-jinja` turns it off) and a template that takes
 * tools, as `/props` declares it.
 */
export function checkLlamaRequest(
  req: GenerateRequest,
  jinja: boolean,
  toolCalls: boolean | undefined,
): void {
  checkSupport('llamacpp', req, {
    sampling: ALL_SAMPLING,
    stop: true,
    responseFormat: new Set(['json_object', 'json_schema']),
    messages: true,
    tools: !jinja
      ? 'llama-server was started with --no-jinja: tool calls need its Jinja chat templates'
      : toolCalls !== true
        ? "the model's chat template takes no tools (llama-server's /props: chat_template_caps.supports_tool_calls is not true)"
        : true,
  });
}

/**
 * Requests with tools go to llama-server's own `/v1/chat/completions`: its template renders the
 * tools and its tool-call parser turns the model's output into `tool_calls` (which `/completion`
 * does not). The same sampling values as `/completion`; llama-server takes its native sampling
 * names on this route as well (`params_from_json_cmpl` reads the merged body).
 */
export function toChatRequest(req: GenerateRequest): ChatCompletionRequest {
  const c = toCompletionRequest(req, '');
  const { prompt: _prompt, n_predict, stream: _stream, return_tokens: _tokens, json_schema, ...sampling } = c;
  return {
    ...sampling,
    messages: req.messages ?? [],
    ...(req.tools === undefined ? {} : { tools: req.tools }),
    ...(req.toolChoice === undefined ? {} : { tool_choice: req.toolChoice }),
    ...(json_schema === undefined
      ? {}
      : { response_format: { type: 'json_schema', json_schema: { schema: json_schema } } }),
    max_tokens: n_predict,
    stream: true,
    stream_options: { include_usage: true },
  };
}
