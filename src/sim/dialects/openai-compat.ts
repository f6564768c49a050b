/**
 * OpenAI-compatible `/v1/completions` and `/v1/chat/completions`, as vLLM serves them (and TGI's
 * Messages API, which current Hugging Face clients use): `data: {chunk}` events, an optional usage
 * chunk (`stream_options.include_usage`, per chunk with `continuous_usage_stats`), `data: [DONE]`.
 * How each engine writes its errors differs; the caller passes its `OpenAiErrors`.
 *
 * Stop strings follow vLLM (`vllm/v1/engine/output_processor.py`, `detokenizer.py`): the stop
 * string is not part of the output, and while streaming the last `max(len(stop)) - 1` characters
 * are held back so a stop string is never sent before it is recognised. The end-of-sequence
 * token counts as a completion token but has no text (`skip_special_tokens`). A stop string ends
 * with `finish_reason: "stop"` and `stop_reason` the string; end-of-sequence with `stop_reason: null`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimError, type SimEngine, type SimFinish } from '../sim-engine.js';
import { clientGone, num, obj, readJson, samplingKey, sendJson, startSse, str } from '../http-util.js';

/** The simulator's failure kinds as an HTTP status and an error type name. */
export interface EngineFailure {
  readonly status: number;
  readonly type: string;
  readonly message: string;
  /** The request field at fault, where the engine names one. */
  readonly param?: string;
}

/** How one engine renders errors on its OpenAI-compatible routes. */
export interface OpenAiErrors {
  /** An error answered before the stream started. */
  http(res: ServerResponse, f: EngineFailure): void;
  /**
   * The `data:` payload of an error met mid-stream, or undefined where the engine drops the
   * connection instead (the stream then ends without `[DONE]`).
   */
  stream(f: EngineFailure, se: SimError): string | undefined;
  /** The failure a prompt over the context length is. */
  ctx(promptTokens: number, maxTokens: number, ctx: number): EngineFailure;
  /** The failure of a simulated engine fault. */
  failure(se: SimError): EngineFailure;
}

export function chatPrompt(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  return messages.map((m) => `${str(obj(m)['role']) ?? 'user'}: ${str(obj(m)['content']) ?? ''}`).join('\n');
}

/** A request's `stop`: one string or a list (OpenAI's completions and chat APIs). */
export function stopStrings(v: unknown): string[] {
  if (typeof v === 'string') return v === '' ? [] : [v];
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string' && s !== '') : [];
}

export interface OpenAiRouteOptions {
  readonly url: string;
  /** vLLM refuses unknown model names; TGI serves one model whatever the name. */
  readonly modelCheck: boolean;
  readonly errors: OpenAiErrors;
  /**
   * Output the engine forces instead of sampled text (constrained decoding, a tool call), or the
   * failure the engine answers for the request; undefined: sampled text.
   */
  readonly forced?: (body: Record<string, unknown>, seed: number) => ForcedOutput | EngineFailure | undefined;
}

/**
 * Text the engine emits whatever the sampler would have drawn: one character per generated
 * token (the simulator's byte-level vocabulary), cut at `max_tokens` ("length") like sampled text.
 * Stop strings do not apply to it.
 */
export interface ForcedOutput {
  readonly text: string;
  /** The text is the arguments of this tool call, streamed as `delta.tool_calls` fragments. */
  readonly toolCall?: { readonly id: string; readonly name: string };
  /** `finish_reason` once the text is complete (default "stop"). */
  readonly finish?: 'stop' | 'tool_calls';
}

/** Sampling fields of the OpenAI-compatible requests that enter the determinism key. */
const SAMPLING_NAMES = ['temperature', 'top_k', 'top_p', 'min_p', 'repetition_penalty'] as const;
/** Keyed only when sent, so requests without them keep the streams they always had. */
const PENALTY_NAMES = ['presence_penalty', 'frequency_penalty'] as const;

function samplerProfileOf(b: Record<string, unknown>): string {
  const extra = PENALTY_NAMES.filter((n) => b[n] !== undefined);
  return samplingKey(b, [...SAMPLING_NAMES, ...extra]);
}

/** The prompt of a chat request as the simulator's chat template writes it: turns, then any tools. */
export function chatTemplate(messages: unknown, tools: unknown): string | undefined {
  const turns = chatPrompt(messages);
  if (turns === undefined || !Array.isArray(tools) || tools.length === 0) return turns;
  return `${turns}\ntools: ${JSON.stringify(tools)}`;
}

/** How a generation ended; `toolCalls`: forced tool-call text that completed. */
type Finish = SimFinish & { readonly toolCalls?: boolean };

const finishReason = (f: Finish): 'length' | 'stop' | 'tool_calls' =>
  f.finish === 'length' ? 'length' : f.finish === 'eos' && f.toolCalls === true ? 'tool_calls' : 'stop';

export async function openAiCompletions(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  o: OpenAiRouteOptions,
): Promise<void> {
  const chat = o.url === '/v1/chat/completions';
  const fail = (status: number, type: string, message: string) =>
    o.errors.http(res, { status, type, message });
  const b = obj(await readJson(req));
  const prompt = chat ? chatTemplate(b['messages'], b['tools']) : str(b['prompt']);
  if (prompt === undefined)
    return fail(400, 'BadRequestError', chat ? 'messages is required' : 'prompt is required');
  if (o.modelCheck && str(b['model']) !== e.opts.modelId)
    return fail(404, 'NotFoundError', `The model \`${str(b['model']) ?? ''}\` does not exist.`);
  const maxTokens = num(b['max_tokens']) ?? 16;
  const promptTokens = e.tokenize(prompt).length;
  if (promptTokens + maxTokens > e.opts.ctx)
    return o.errors.http(res, o.errors.ctx(promptTokens, maxTokens, e.opts.ctx));
  const seed = num(b['seed']) ?? 0;
  const forcedOrFailure = o.forced?.(b, seed);
  if (forcedOrFailure !== undefined && 'status' in forcedOrFailure)
    return o.errors.http(res, forcedOrFailure);
  const forced = forcedOrFailure;
  const pieces = forced === undefined ? [] : [...forced.text];
  const stop = forced === undefined ? stopStrings(b['stop']) : [];
  const holdBack = Math.max(0, ...stop.map((s) => s.length - 1));
  const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
  const created = Math.floor(Date.now() / 1000);
  const object = chat ? 'chat.completion.chunk' : 'text_completion';
  const stream = b['stream'] === true;
  const includeUsage = obj(b['stream_options'])['include_usage'] === true;
  const continuousUsage = includeUsage && obj(b['stream_options'])['continuous_usage_stats'] === true;
  const usageOf = (n: number) => ({
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + n,
    completion_tokens: n,
  });
  const signal = clientGone(req, res);
  const gen = e.generate(
    prompt,
    {
      maxTokens: forced === undefined ? maxTokens : Math.min(maxTokens, pieces.length),
      seed,
      ignoreEos: forced !== undefined || b['ignore_eos'] === true,
      stop,
      samplerProfile: samplerProfileOf(b),
    },
    signal,
  );
  // Forced text is complete once every piece went out; cut short by max_tokens it is "length".
  const forcedEnd = (f: SimFinish): Finish =>
    forced === undefined
      ? f
      : f.completionTokens >= pieces.length
        ? { ...f, finish: 'eos', toolCalls: forced.finish === 'tool_calls' }
        : { ...f, finish: 'length' };
  let toolCallOpened = false;
  const toolDelta = (text: string) => {
    const call = forced?.toolCall;
    if (call === undefined) return undefined;
    if (toolCallOpened) return { tool_calls: [{ index: 0, function: { arguments: text } }] };
    toolCallOpened = true;
    return {
      tool_calls: [
        { id: call.id, type: 'function', index: 0, function: { name: call.name, arguments: text } },
      ],
    };
  };
  const choice = (text: string, finish: string | null, stopReason: string | null, first = false) =>
    chat
      ? {
          index: 0,
          delta: first ? { role: 'assistant', content: '' } : (toolDelta(text) ?? { content: text }),
          logprobs: null,
          finish_reason: finish,
          stop_reason: stopReason,
        }
      : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: stopReason };
  const chunk = (choices: unknown[], usage: unknown) =>
    `data: ${JSON.stringify({ id, object, created, model: e.opts.modelId, choices, usage })}\n\n`;
  let text = '';
  let sent = 0;
  let produced = 0;
  try {
    let next = await gen.next();
    if (stream) startSse(res);
    if (stream && chat) res.write(chunk([choice('', null, null, true)], continuousUsage ? usageOf(0) : null));
    while (next.done !== true) {
      const tok = next.value;
      next = await gen.next();
      produced++;
      if (forced !== undefined) text += pieces[produced - 1] ?? '';
      else if (tok.special !== true) text += tok.text;
      const end = next.done === true ? forcedEnd(next.value) : undefined;
      if (end?.stopString !== undefined) text = text.slice(0, text.length - end.stopString.length);
      const upTo = end !== undefined ? text.length : Math.max(sent, text.length - holdBack);
      const delta = text.slice(sent, upTo);
      sent = upTo;
      if (stream)
        res.write(
          chunk(
            [choice(delta, end ? finishReason(end) : null, end?.stopString ?? null)],
            continuousUsage ? usageOf(produced) : null,
          ),
        );
    }
    const end = forcedEnd(next.value);
    if (stream) {
      if (includeUsage) res.write(chunk([], usageOf(produced)));
      res.end('data: [DONE]\n\n');
      return;
    }
    const finish = finishReason(end);
    sendJson(res, 200, {
      id,
      object: chat ? 'chat.completion' : 'text_completion',
      created,
      model: e.opts.modelId,
      choices: [
        chat
          ? {
              index: 0,
              message:
                forced?.toolCall === undefined
                  ? { role: 'assistant', content: text }
                  : {
                      role: 'assistant',
                      content: null,
                      tool_calls: [
                        {
                          id: forced.toolCall.id,
                          type: 'function',
                          function: { name: forced.toolCall.name, arguments: text },
                        },
                      ],
                    },
              logprobs: null,
              finish_reason: finish,
              stop_reason: end.stopString ?? null,
            }
          : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: end.stopString ?? null },
      ],
      usage: usageOf(produced),
    });
  } catch (err) {
    if (signal.aborted) return;
    const se = err instanceof SimError ? err : new SimError('invalid', String(err));
    const f = o.errors.failure(se);
    if (!res.headersSent) return o.errors.http(res, f);
    const data = o.errors.stream(f, se);
    // Cut the connection once what was sent so far has left, as a dying server's would be.
    if (data === undefined) res.write('', () => res.destroy());
    else res.end(`data: ${data}\n\ndata: [DONE]\n\n`);
  }
}
