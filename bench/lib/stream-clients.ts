/**
 * The clients a benchmark drives: an OpenAI-compatible streamed completion (engines, nginx,
 * Portkey) and llama-orch's two-step API (`POST /v1/tasks`, then `GET …/stream`). Both time the
 * first token and the end of the stream from the moment the first request is sent.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Timing } from './load.js';

/** Keep-alive connections without a per-origin cap, like a busy service's HTTP client. */
// Idle sockets are dropped before servers drop them (llama-server closes idle keep-alive after 5 s).
export const agent = new Agent({
  keepAliveTimeout: 2_000,
  keepAliveMaxTimeout: 2_000,
  connections: null,
  pipelining: 1,
});

/**
 * `undici.request`, retried once when a kept-alive connection was closed by the server before it
 * answered (llama-server closes keep-alive connections after a few requests), as llama-orch's
 * engine client does: every path gets the same treatment.
 */
export async function send(url: string, opts: Parameters<typeof request>[1]): ReturnType<typeof request> {
  try {
    return await request(url, opts);
  } catch (err) {
    if ((err as { code?: string }).code !== 'UND_ERR_SOCKET') throw err;
    return request(url, opts);
  }
}

/** `POST {base}/v1/completions` with `stream: true`; the first `data:` frame with text is the first token. */
export async function openaiStream(
  base: string,
  body: { model: string; prompt: string; max_tokens: number },
  headers: Record<string, string> = {},
  /** vLLM's extension; llama-orch's OpenAI surface refuses it (its simulated engine never ends early). */
  ignoreEos = true,
): Promise<Timing> {
  const t0 = performance.now();
  const res = await send(`${base}/v1/completions`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ ...body, stream: true, ...(ignoreEos ? { ignore_eos: true } : {}) }),
  });
  if (res.statusCode !== 200)
    throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
  let ttft: number | undefined;
  let done = false;
  let tail = ''; // a marker may straddle two chunks
  for await (const chunk of res.body) {
    const text = tail + (chunk as Buffer).toString('utf8');
    tail = text.slice(-16);
    if (ttft === undefined && text.includes('"text"')) ttft = performance.now() - t0;
    if (text.includes('[DONE]')) done = true;
  }
  if (!done || ttft === undefined) throw new Error('stream ended early');
  return { ttftMs: ttft, totalMs: performance.now() - t0 };
}

/** The SSE frames of a response body (text between blank lines), as they complete. */
export async function* sseFrames(body: AsyncIterable<unknown>): AsyncGenerator<string> {
  let buf = '';
  for await (const chunk of body) {
    buf += (chunk as Buffer).toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 2);
    }
  }
}

/** llama-orch's real two-step API: enqueue, then stream until `end`; counts the tokens. */
export async function orchStream(
  base: string,
  task: { model_ref: string; engine: string; prompt: string; max_tokens: number; ctx: number; seed?: number },
): Promise<Timing & { tokens: number }> {
  const t0 = performance.now();
  const taskId = randomUUID();
  const enq = await send(`${base}/v1/tasks`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ...task,
      task_id: taskId,
      session_id: randomUUID(),
      workload: 'completion',
      priority: 'interactive',
      deadline_ms: 600_000,
    }),
  });
  const accepted = await enq.body.text();
  if (enq.statusCode !== 202) throw new Error(`HTTP ${enq.statusCode}: ${accepted.slice(0, 200)}`);
  const res = await request(`${base}/v1/tasks/${taskId}/stream`, { dispatcher: agent });
  if (res.statusCode !== 200) throw new Error(`stream HTTP ${res.statusCode}`);
  let ttft: number | undefined;
  let tokens: number | undefined;
  for await (const frame of sseFrames(res.body)) {
    if (frame.startsWith('event: token')) ttft ??= performance.now() - t0;
    else if (frame.startsWith('event: end'))
      tokens = (JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as { tokens_out: number }).tokens_out;
    else if (frame.startsWith('event: error')) throw new Error(`task failed: ${frame.slice(0, 200)}`);
  }
  if (tokens === undefined || ttft === undefined) throw new Error('stream ended without end');
  return { ttftMs: ttft, totalMs: performance.now() - t0, tokens };
}
