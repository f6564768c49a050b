/**
 * OpenAI-compatible `/v1/completions` and `/v1/chat/completions`, as vLLM serves them (and TGI's
 * Messages API, which the Hugging Face client uses): `data: {chunk}` events, an optional usage
 * chunk (`stream_options.include_usage`, per chunk with `continuous_usage_stats`), `data: [DONE]`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimError, type SimEngine } from '../sim-engine.js';
import { clientGone, num, obj, readJson, samplingKey, sendJson, startSse, str } from '../http-util.js';

export const errorBody = (code: number, message: string, type: string) => ({
  object: 'error',
  message,
  type,
  param: null,
  code,
});
const TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'Unauthorized',
  404: 'NotFoundError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

export function fail(res: ServerResponse, code: number, message: string): void {
  sendJson(res, code, errorBody(code, message, TYPES[code] ?? 'InternalServerError'));
}

export function statusOf(e: SimError): number {
  return e.kind === 'ctx' || e.kind === 'invalid'
    ? 400
    : e.kind === 'loading' || e.kind === 'refused'
      ? 503
      : 500;
}

export function chatPrompt(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  return messages.map((m) => `${str(obj(m)['role']) ?? 'user'}: ${str(obj(m)['content']) ?? ''}`).join('\n');
}

export interface OpenAiRouteOptions {
  readonly url: string;
  /** vLLM refuses unknown model names; TGI serves one model whatever the name. */
  readonly modelCheck: boolean;
}

export async function openAiCompletions(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  o: OpenAiRouteOptions,
): Promise<void> {
  const chat = o.url === '/v1/chat/completions';
  {
    const b = obj(await readJson(req));
    const prompt = chat ? chatPrompt(b['messages']) : str(b['prompt']);
    if (prompt === undefined) return fail(res, 400, chat ? 'messages is required' : 'prompt is required');
    if (o.modelCheck && str(b['model']) !== e.opts.modelId)
      return fail(res, 404, `The model \`${str(b['model']) ?? ''}\` does not exist.`);
    const maxTokens = num(b['max_tokens']) ?? 16;
    const promptTokens = e.tokenize(prompt).length;
    if (promptTokens + maxTokens > e.opts.ctx) {
      return fail(
        res,
        400,
        `This model's maximum context length is ${e.opts.ctx} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
      );
    }
    const id = `${chat ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const object = chat ? 'chat.completion.chunk' : 'text_completion';
    const stream = b['stream'] === true;
    const includeUsage = obj(b['stream_options'])['include_usage'] === true;
    const continuousUsage = includeUsage && obj(b['stream_options'])['continuous_usage_stats'] === true;
    const usageAt = (n: number) =>
      continuousUsage
        ? { prompt_tokens: promptTokens, total_tokens: promptTokens + n, completion_tokens: n }
        : null;
    const signal = clientGone(req, res);
    const gen = e.generate(
      prompt,
      {
        maxTokens,
        seed: num(b['seed']) ?? 0,
        ignoreEos: b['ignore_eos'] === true,
        samplerProfile: samplingKey(b, ['temperature', 'top_k', 'top_p', 'min_p', 'repetition_penalty']),
      },
      signal,
    );
    const choice = (text: string, finish: string | null) =>
      chat
        ? {
            index: 0,
            delta: text === '' && finish === null ? { role: 'assistant', content: '' } : { content: text },
            logprobs: null,
            finish_reason: finish,
            stop_reason: null,
          }
        : { index: 0, text, logprobs: null, finish_reason: finish, stop_reason: null };
    let text = '';
    let produced = 0;
    try {
      let next = await gen.next();
      if (stream) startSse(res);
      if (stream && chat)
        res.write(
          `data: ${JSON.stringify({ id, object, created, model: e.opts.modelId, choices: [choice('', null)], usage: usageAt(0) })}\n\n`,
        );
      while (next.done !== true) {
        const tok = next.value;
        next = await gen.next();
        produced++;
        text += tok.text;
        const finish = next.done === true ? 'length' : null;
        if (stream)
          res.write(
            `data: ${JSON.stringify({ id, object, created, model: e.opts.modelId, choices: [choice(tok.text, finish)], usage: usageAt(produced) })}\n\n`,
          );
      }
      const usage = {
        prompt_tokens: promptTokens,
        total_tokens: promptTokens + produced,
        completion_tokens: produced,
      };
      if (stream) {
        if (includeUsage)
          res.write(
            `data: ${JSON.stringify({ id, object, created, model: e.opts.modelId, choices: [], usage })}\n\n`,
          );
        res.end('data: [DONE]\n\n');
      } else {
        sendJson(res, 200, {
          id,
          object: chat ? 'chat.completion' : 'text_completion',
          created,
          model: e.opts.modelId,
          choices: [
            chat
              ? {
                  index: 0,
                  message: { role: 'assistant', content: text },
                  logprobs: null,
                  finish_reason: 'length',
                  stop_reason: null,
                }
              : { index: 0, text, logprobs: null, finish_reason: 'length', stop_reason: null },
          ],
          usage,
        });
      }
    } catch (err) {
      if (signal.aborted) return;
      const se = err instanceof SimError ? err : new SimError('invalid', String(err));
      const code = statusOf(se);
      if (res.headersSent)
        res.end(
          `data: ${JSON.stringify({ error: errorBody(code, se.message, TYPES[code] ?? 'InternalServerError') })}\n\ndata: [DONE]\n\n`,
        );
      else fail(res, code, se.message);
    }
    return;
  }
}
