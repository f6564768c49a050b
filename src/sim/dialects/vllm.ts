/** vLLM's OpenAI-compatible server (docs.vllm.ai "OpenAI-Compatible Server"), as the simulator speaks it. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimError, type SimEngine } from '../sim-engine.js';
import {
  clientGone,
  num,
  obj,
  prom,
  readJson,
  samplingKey,
  sendJson,
  sendText,
  startSse,
  str,
} from '../http-util.js';

const errorBody = (code: number, message: string, type: string) => ({
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

function fail(res: ServerResponse, code: number, message: string): void {
  sendJson(res, code, errorBody(code, message, TYPES[code] ?? 'InternalServerError'));
}

function statusOf(e: SimError): number {
  return e.kind === 'ctx' || e.kind === 'invalid'
    ? 400
    : e.kind === 'loading' || e.kind === 'refused'
      ? 503
      : 500;
}

function chatPrompt(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  return messages.map((m) => `${str(obj(m)['role']) ?? 'user'}: ${str(obj(m)['content']) ?? ''}`).join('\n');
}

export async function vllmRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  apiKey: string | undefined,
): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0] ?? '/';
  if (req.method === 'GET' && url === '/health') {
    if (e.loading()) sendText(res, 503, '');
    else sendText(res, 200, '');
    return true;
  }
  if (req.method === 'GET' && url === '/version') {
    sendJson(res, 200, { version: e.opts.engineVersion });
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    const labels = `model_name="${e.opts.modelId}"`;
    sendText(
      res,
      200,
      prom([
        [
          'vllm:num_requests_running',
          'gauge',
          'Number of requests in model execution batches.',
          e.running,
          labels,
        ],
        [
          'vllm:num_requests_waiting',
          'gauge',
          'Number of requests waiting to be processed.',
          e.waiting,
          labels,
        ],
        [
          'vllm:gpu_cache_usage_perc',
          'gauge',
          'GPU KV-cache usage. 1 means 100 percent usage.',
          e.kvUsage,
          labels,
        ],
        [
          'vllm:prompt_tokens_total',
          'counter',
          'Number of prefill tokens processed.',
          e.stats.promptTokens,
          labels,
        ],
        [
          'vllm:generation_tokens_total',
          'counter',
          'Number of generation tokens processed.',
          e.stats.generatedTokens,
          labels,
        ],
      ]),
      'text/plain; version=0.0.4',
    );
    return true;
  }
  if (url.startsWith('/v1/') && apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) {
    sendJson(res, 401, { error: 'Unauthorized' });
    return true;
  }
  if (e.loading()) {
    fail(res, 503, 'The model is still loading');
    return true;
  }
  if (req.method === 'GET' && url === '/v1/models') {
    sendJson(res, 200, {
      object: 'list',
      data: [
        {
          id: e.opts.modelId,
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: 'vllm',
          root: e.opts.modelId,
          parent: null,
          max_model_len: e.opts.ctx,
        },
      ],
    });
    return true;
  }
  if (req.method === 'POST' && url === '/tokenize') {
    const b = obj(await readJson(req));
    const tokens = e.tokenize(str(b['prompt']) ?? '', b['add_special_tokens'] !== false);
    sendJson(res, 200, { count: tokens.length, max_model_len: e.opts.ctx, tokens });
    return true;
  }
  if (req.method === 'POST' && url === '/v1/embeddings') {
    const b = obj(await readJson(req));
    const input = b['input'];
    const inputs = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map(String) : undefined;
    if (inputs === undefined) return (fail(res, 400, 'input is required'), true);
    const promptTokens = inputs.reduce((n, s) => n + e.tokenize(s).length, 0);
    sendJson(res, 200, {
      id: `embd-${randomUUID()}`,
      object: 'list',
      created: Math.floor(Date.now() / 1000),
      model: e.opts.modelId,
      data: inputs.map((s, index) => ({ index, object: 'embedding', embedding: e.embed(s) })),
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens, completion_tokens: 0 },
    });
    return true;
  }
  const chat = url === '/v1/chat/completions';
  if (req.method === 'POST' && (url === '/v1/completions' || chat)) {
    const b = obj(await readJson(req));
    const prompt = chat ? chatPrompt(b['messages']) : str(b['prompt']);
    if (prompt === undefined)
      return (fail(res, 400, chat ? 'messages is required' : 'prompt is required'), true);
    if (str(b['model']) !== e.opts.modelId)
      return (fail(res, 404, `The model \`${str(b['model']) ?? ''}\` does not exist.`), true);
    const maxTokens = num(b['max_tokens']) ?? 16;
    const promptTokens = e.tokenize(prompt).length;
    if (promptTokens + maxTokens > e.opts.ctx) {
      return (
        fail(
          res,
          400,
          `This model's maximum context length is ${e.opts.ctx} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
        ),
        true
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
      if (signal.aborted) return true;
      const se = err instanceof SimError ? err : new SimError('invalid', String(err));
      const code = statusOf(se);
      if (res.headersSent)
        res.end(
          `data: ${JSON.stringify({ error: errorBody(code, se.message, TYPES[code] ?? 'InternalServerError') })}\n\ndata: [DONE]\n\n`,
        );
      else fail(res, code, se.message);
    }
    return true;
  }
  return false;
}
