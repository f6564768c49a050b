/**
 * What a TGI release can honour of a request, from its `/info` `version`. Sources
 * (huggingface/text-generation-inference): `router/src/lib.rs` `GenerateParameters`,
 * `ChatRequest`, `GrammarType`; `router/src/validation.rs`; `router/src/server.rs`;
 * `router/src/chat.rs`, at the tags named below (v1.4.1 `4139054b`, v2.3.0 `169178b9`,
 * v3.2.0 `411a2828`, v3.3.7 `dfb3fbe7`).
 */
import type { SamplingOptions } from '../../domain/sampling.js';
import { OrchError } from '../../errors/orch-error.js';
import { releasedBefore } from '../../util/release-version.js';
import type { GenerateRequest } from '../adapter.js';
import { checkSupport } from '../request-support.js';
import type { Info } from './wire-types.js';

/** The request features of one TGI release. */
export interface TgiCapabilities {
  /** `parameters.frequency_penalty` and `parameters.grammar`: added in v1.4.1 (absent in v1.4.0). */
  readonly frequencyPenalty: boolean;
  readonly grammar: boolean;
  /**
   * A JSON grammar must have `properties` (v2.3.0, f15e808d, #2309: "Grammar must have a
   * 'properties' field"), which rules out `json_object`'s bare `{"type": "object"}`.
   */
  readonly grammarNeedsProperties: boolean;
  /**
   * The Messages API with `/chat_tokenize` and `stream_options.include_usage` (v2.3.0): without
   * them prompt tokens after the chat template cannot be counted, so `messages` needs v2.3.0.
   */
  readonly chat: boolean;
  /**
   * Tool calls streamed as OpenAI `tool_calls` deltas, name first (`router/src/chat.rs`
   * `ChatState`, v3.2.0). Earlier releases stream the raw grammar text of the call as
   * `tool_calls`, which no client can assemble.
   */
  readonly tools: boolean;
  /** `--max-stop-sequences` (`/info` `max_stop_sequences`, default 4): more is a 422. */
  readonly maxStopSequences: number;
}

/** What the current releases (v3.2.0 and later) honour: assumed until `/info` has answered. */
export const CURRENT_TGI: TgiCapabilities = {
  frequencyPenalty: true,
  grammar: true,
  grammarNeedsProperties: true,
  chat: true,
  tools: true,
  maxStopSequences: 4,
};

export function tgiCapabilities(info: Pick<Info, 'version' | 'max_stop_sequences'>): TgiCapabilities {
  const before = (v: readonly [number, number, number]) => releasedBefore(info.version, v);
  return {
    frequencyPenalty: !before([1, 4, 1]),
    grammar: !before([1, 4, 1]),
    grammarNeedsProperties: !before([2, 3, 0]),
    chat: !before([2, 3, 0]),
    tools: !before([3, 2, 0]),
    maxStopSequences: info.max_stop_sequences ?? CURRENT_TGI.maxStopSequences,
  };
}

const refuse = (field: string, why: string): never => {
  throw new OrchError('INVALID_PARAMS', `${field}: engine 'tgi' cannot honour it (${why})`, {
    engine: 'tgi',
  });
};

/**
 * Throws `INVALID_PARAMS` naming the first field of `req` that TGI (release `caps`) cannot
 * honour. Plain prompts go to `/generate_stream`, chat turns to the Messages API, whose
 * parameters differ: see `map-request.ts`.
 */
export function checkTgiRequest(req: GenerateRequest, caps: TgiCapabilities): void {
  const chat = req.messages !== undefined;
  const set = (k: keyof SamplingOptions) => req.sampling?.[k] !== undefined;
  if (chat && !caps.chat)
    refuse(
      'messages',
      'TGI before v2.3.0 has no /chat_tokenize to count prompt tokens after its chat template',
    );
  if (set('minP')) refuse('min_p', 'TGI has no min_p parameter on /generate nor on its Messages API');
  if (set('presencePenalty'))
    refuse(
      'presence_penalty',
      chat
        ? "TGI's Messages API turns presence_penalty into repetition_penalty = presence_penalty + 2, not an additive penalty"
        : 'TGI has no presence_penalty parameter on /generate',
    );
  if (chat && set('topK')) refuse('top_k', "TGI's Messages API has no top_k parameter");
  if (set('frequencyPenalty') && !caps.frequencyPenalty)
    refuse('frequency_penalty', 'TGI before v1.4.1 has no frequency_penalty parameter');
  const stops = req.stop?.length ?? 0;
  if (stops > caps.maxStopSequences)
    refuse('stop', `this TGI takes at most ${caps.maxStopSequences} stop sequences (--max-stop-sequences)`);
  const format = req.responseFormat;
  if (format !== undefined && format.type !== 'text') {
    if (!caps.grammar) refuse('response_format', 'TGI before v1.4.1 has no grammar parameter');
    if (format.type === 'json_object' && caps.grammarNeedsProperties)
      refuse(
        'response_format',
        "TGI since v2.3.0 takes only JSON schemas with 'properties' as a grammar, so not type 'json_object'",
      );
    if (
      format.type === 'json_schema' &&
      caps.grammarNeedsProperties &&
      !hasProperties(format.json_schema.schema)
    )
      refuse('response_format', "TGI since v2.3.0 takes only JSON schemas with 'properties' as a grammar");
  }
  const tools = (req.tools?.length ?? 0) > 0;
  if (tools && !chat) refuse('tools', 'tools need chat messages (the Messages API)');
  if (tools && !caps.tools)
    refuse('tools', 'TGI before v3.2.0 streams tool calls as raw grammar text, not as tool_calls deltas');
  if (tools && format !== undefined && format.type !== 'text')
    refuse(
      'response_format',
      'TGI refuses response_format together with tools ("Grammar and tools are mutually exclusive")',
    );
  checkSupport('tgi', req, {
    sampling: new Set<keyof SamplingOptions>(
      chat
        ? ['temperature', 'topP', 'repeatPenalty', 'frequencyPenalty']
        : ['temperature', 'topP', 'topK', 'repeatPenalty', 'frequencyPenalty'],
    ),
    stop: true,
    responseFormat: new Set(['json_object', 'json_schema']),
    messages: true,
    tools: true,
  });
}

function hasProperties(schema: Readonly<Record<string, unknown>> | undefined): boolean {
  const p = schema?.['properties'];
  return p !== null && typeof p === 'object' && !Array.isArray(p);
}
