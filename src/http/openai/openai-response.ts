/** OpenAI response and chunk shapes built from a task's events (SPEC §17 §2.7). */
import { createHash } from 'node:crypto';
import type { EndData } from '../../domain/events.js';
import type { ToolCall } from '../../domain/sampling.js';
import type { OpenAiOperation } from './openai-request.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Identifies the backend configuration a seed reproduces on: engine build and model bytes. */
export function systemFingerprint(engineVersion: string, modelDigest: string | undefined): string {
  const key = `${engineVersion}\n${modelDigest ?? ''}`;
  let fp = fingerprints.get(key);
  if (fp === undefined) {
    fp = `fp_${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
    // A handful of engine builds and models per fleet: a hash per response is not worth paying.
    if (fingerprints.size >= 1024) fingerprints.clear();
    fingerprints.set(key, fp);
  }
  return fp;
}

const fingerprints = new Map<string, string>();

export function usageOf(end: EndData, promptTokens: number): Usage {
  const prompt = end.tokens_in ?? promptTokens;
  return { prompt_tokens: prompt, completion_tokens: end.tokens_out, total_tokens: prompt + end.tokens_out };
}

/** OpenAI's `finish_reason`: a canceled task ended like a stopped one, as far as the client can tell. */
export function finishReasonOf(end: EndData): 'stop' | 'length' | 'tool_calls' {
  const f = end.finish_reason;
  return f === 'length' || f === 'tool_calls' ? f : 'stop';
}

export interface ResponseHead {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly systemFingerprint: string;
}

/** `chat.completion` / `text_completion` (non-streaming). */
export function completionBody(
  op: Exclude<OpenAiOperation, 'embedding'>,
  h: ResponseHead,
  text: string,
  end: EndData,
  promptTokens: number,
): Record<string, unknown> {
  const calls = end.tool_calls ?? [];
  const choice =
    op === 'chat'
      ? {
          index: 0,
          message: {
            role: 'assistant',
            content: calls.length > 0 && text === '' ? null : text,
            ...(calls.length > 0 ? { tool_calls: calls } : {}),
            refusal: null,
          },
          logprobs: null,
          finish_reason: finishReasonOf(end),
        }
      : { index: 0, text, logprobs: null, finish_reason: finishReasonOf(end) };
  return {
    id: h.id,
    object: op === 'chat' ? 'chat.completion' : 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: h.systemFingerprint,
    choices: [choice],
    usage: usageOf(end, promptTokens),
  };
}

/** One streamed chunk: a text delta, the role announcement, or the final one with finish_reason. */
export function chunkBody(
  op: Exclude<OpenAiOperation, 'embedding'>,
  h: ResponseHead,
  part:
    | { kind: 'role' }
    | { kind: 'text'; text: string }
    | { kind: 'tools'; calls: readonly ToolCall[] }
    | { kind: 'end'; end: EndData }
    | { kind: 'usage'; usage: Usage },
  includeUsage: boolean,
): Record<string, unknown> {
  const head = {
    id: h.id,
    object: op === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: h.created,
    model: h.model,
    system_fingerprint: h.systemFingerprint,
  };
  if (part.kind === 'usage') return { ...head, choices: [], usage: part.usage };
  const finish = part.kind === 'end' ? finishReasonOf(part.end) : null;
  let choice: Record<string, unknown>;
  if (op === 'chat') {
    const delta =
      part.kind === 'role'
        ? { role: 'assistant', content: '' }
        : part.kind === 'text'
          ? { content: part.text }
          : part.kind === 'tools'
            ? toolCallDelta(part.calls)
            : {};
    choice = { index: 0, delta, logprobs: null, finish_reason: finish };
  } else
    choice = { index: 0, text: part.kind === 'text' ? part.text : '', logprobs: null, finish_reason: finish };
  return { ...head, choices: [choice], ...(includeUsage ? { usage: null } : {}) };
}

/**
 * The JSON of a stream's text-delta chunks (`chunkBody` with `kind: 'text'`), byte for byte, from
 * the parts that do not change within the stream: built once per stream, so that a token costs
 * one string escape instead of building and serializing the whole chunk.
 */
export function textChunkEncoder(
  op: Exclude<OpenAiOperation, 'embedding'>,
  h: ResponseHead,
  includeUsage: boolean,
): (text: string) => string {
  const generic = (text: string): string =>
    JSON.stringify(chunkBody(op, h, { kind: 'text', text }, includeUsage));
  // JSON.stringify writes a string the same wherever it sits: the chunk around a marker text is
  // the chunk around any text, unless the marker also occurs in the constant parts.
  const marker = JSON.stringify(TEXT_MARKER);
  const template = generic(TEXT_MARKER);
  const at = template.indexOf(marker);
  if (at === -1 || template.lastIndexOf(marker) !== at) return generic;
  const before = template.slice(0, at);
  const after = template.slice(at + marker.length);
  return (text) => before + JSON.stringify(text) + after;
}

const TEXT_MARKER = '\u0000llorch-text\u0000';

/** The calls as one delta each: whole arguments at once, which every client's accumulator takes. */
function toolCallDelta(calls: readonly ToolCall[] | undefined): Record<string, unknown> {
  if (calls === undefined || calls.length === 0) return {};
  return {
    tool_calls: calls.map((c, index) => ({
      index,
      id: c.id,
      type: 'function',
      function: { name: c.function.name, arguments: c.function.arguments },
    })),
  };
}

/** Little-endian float32 bytes as base64: what `encoding_format: base64` returns. */
export function base64Vector(v: readonly number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}
