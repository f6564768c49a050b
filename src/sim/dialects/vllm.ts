/** vLLM's OpenAI-compatible server (docs.vllm.ai "OpenAI-Compatible Server"), as the simulator speaks it. */
import { randomUUID } from 'node:crypto';
import { fail, openAiCompletions } from './openai-compat.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimEngine } from '../sim-engine.js';
import { obj, prom, readJson, sendJson, sendText, str } from '../http-util.js';

export async function vllmRoutes(req: IncomingMessage, res: ServerResponse, e: SimEngine): Promise<boolean> {
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
  if (req.method === 'POST' && (url === '/v1/completions' || url === '/v1/chat/completions')) {
    await openAiCompletions(req, res, e, { url, modelCheck: true });
    return true;
  }
  return false;
}
