/**
 * One streamed OpenAI-compatible request, timed: the send, the first token, every token's
 * arrival and the end, with the output token count from the usage chunk where the server sends
 * one. Times are `performance.now()` milliseconds, read once per body chunk: every event of a
 * chunk arrived together.
 */
import type { Dispatcher } from 'undici';
import { agent, send } from '../lib/stream-clients.js';
import { SseDataParser } from './sse-data-parser.js';
import type { PlannedRequest } from './workload.js';

/** What the load generator knows of one request once it ended. */
export interface RequestRecord {
  readonly session: string;
  readonly turn: number;
  readonly sendMs: number;
  /** Arrival of the first chunk with output text; undefined when none came. */
  readonly firstTokenMs: number | undefined;
  /** Arrival of each chunk with output text (the first one included). */
  readonly tokenTimesMs: readonly number[];
  readonly endMs: number;
  /** `usage.completion_tokens` where present, else the chunks with output text. */
  readonly outputTokens: number;
  /** `usage.completion_tokens`, undefined when the server sent no usage. */
  readonly usageTokens: number | undefined;
  readonly promptTokens: number | undefined;
  /** The HTTP status; 0 when no response came (connection refused, reset, timeout). */
  readonly status: number;
  /**
   * Why the request failed, undefined when it completed: `http_<status>`, `stream_error` (an
   * error event in the stream), `incomplete` (the stream ended without `[DONE]`), `bad_chunk`
   * (a `data` payload that is not JSON), `timeout`, or the
   * transport's error code (`ECONNREFUSED`, `UND_ERR_SOCKET`, ...).
   */
  readonly error: string | undefined;
}

interface Chunk {
  choices?: { text?: unknown; delta?: { content?: unknown; reasoning_content?: unknown } }[];
  usage?: { completion_tokens?: unknown; prompt_tokens?: unknown } | null;
  error?: unknown;
}

/** The output text a chunk carries: `text` (completions) or `delta.content` (chat). */
function textOf(c: Chunk): string {
  const choice = c.choices?.[0];
  if (choice === undefined) return '';
  const t = choice.text ?? choice.delta?.content ?? choice.delta?.reasoning_content;
  return typeof t === 'string' ? t : '';
}

export interface StreamOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly dispatcher?: Dispatcher;
  /** Gives up on a request that has not ended after this long (it then counts as failed). */
  readonly timeoutMs?: number;
}

/**
 * Sends `req` to `base` and reads its stream to the end. Never throws: a failure is part of
 * the record. Returns the reply text too (a later turn of the session resends it).
 */
export async function streamRequest(
  base: string,
  req: PlannedRequest,
  meta: { session: string; turn: number },
  o: StreamOptions = {},
): Promise<{ record: RequestRecord; text: string }> {
  const tokenTimesMs: number[] = [];
  let text = '';
  let usageTokens: number | undefined;
  let promptTokens: number | undefined;
  let status = 0;
  let error: string | undefined;
  let done = false;
  const body = JSON.stringify(req.body);
  const signal = AbortSignal.timeout(o.timeoutMs ?? 600_000);
  const sendMs = performance.now();
  try {
    const res = await send(`${base}${req.path}`, {
      method: 'POST',
      dispatcher: o.dispatcher ?? agent,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...o.headers },
      body,
      signal,
    });
    status = res.statusCode;
    if (status !== 200) {
      await res.body.dump();
      error = `http_${status}`;
    } else {
      const parser = new SseDataParser();
      const onData = (data: string, at: number) => {
        if (data === '[DONE]') {
          done = true;
          return;
        }
        const c = JSON.parse(data) as Chunk;
        if (c.error !== undefined) error ??= 'stream_error';
        const piece = textOf(c);
        if (piece !== '') {
          tokenTimesMs.push(at);
          text += piece;
        }
        const u = c.usage;
        if (u && typeof u.completion_tokens === 'number') usageTokens = u.completion_tokens;
        if (u && typeof u.prompt_tokens === 'number') promptTokens = u.prompt_tokens;
      };
      for await (const chunk of res.body) {
        const at = performance.now();
        for (const data of parser.push(chunk as Uint8Array)) onData(data, at);
      }
      for (const data of parser.end()) onData(data, performance.now());
      if (!done) error ??= 'incomplete';
    }
  } catch (err) {
    const e = err as { code?: unknown; name?: unknown };
    error ??=
      err instanceof SyntaxError
        ? 'bad_chunk'
        : typeof e.code === 'string'
          ? e.code
          : e.name === 'TimeoutError'
            ? 'timeout'
            : 'client_error';
  }
  const endMs = performance.now();
  return {
    record: {
      session: meta.session,
      turn: meta.turn,
      sendMs,
      firstTokenMs: tokenTimesMs[0],
      tokenTimesMs,
      endMs,
      outputTokens: usageTokens ?? tokenTimesMs.length,
      usageTokens,
      promptTokens,
      status,
      error,
    },
    text,
  };
}
