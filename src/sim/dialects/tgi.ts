/** Hugging Face text-generation-inference's API (TGI OpenAPI: /generate, /generate_stream, /info), as the simulator speaks it. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimError, type SimEngine } from '../sim-engine.js';
import { openAiCompletions } from './openai-compat.js';
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

function errorOf(e: SimError): { status: number; body: { error: string; error_type: string } } {
  switch (e.kind) {
    case 'ctx':
    case 'invalid':
      return {
        status: 422,
        body: { error: `Input validation error: ${e.message}`, error_type: 'validation' },
      };
    case 'refused':
      return { status: 429, body: { error: 'Model is overloaded', error_type: 'overloaded' } };
    case 'loading':
      return { status: 503, body: { error: 'Model is loading', error_type: 'unhealthy' } };
    case 'oom':
      return {
        status: 424,
        body: { error: `Request failed during generation: ${e.message}`, error_type: 'generation' },
      };
  }
}

const compatWrap = (compat: boolean, body: unknown): unknown => (compat ? [body] : body);

export async function tgiRoutes(req: IncomingMessage, res: ServerResponse, e: SimEngine): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0] ?? '/';
  if (req.method === 'GET' && url === '/health') {
    if (e.loading()) sendJson(res, 503, { error: 'unhealthy', error_type: 'healthcheck' });
    else sendText(res, 200, '');
    return true;
  }
  if (req.method === 'GET' && url === '/info') {
    sendJson(res, 200, {
      model_id: e.opts.modelId,
      model_sha: null,
      model_pipeline_tag: 'text-generation',
      max_concurrent_requests: e.opts.slots,
      max_best_of: 2,
      max_stop_sequences: 4,
      max_input_tokens: e.opts.ctx - 1,
      max_total_tokens: e.opts.ctx,
      validation_workers: 2,
      max_client_batch_size: 4,
      router: 'text-generation-router',
      version: e.opts.engineVersion,
      sha: null,
      docker_label: null,
    });
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    sendText(
      res,
      200,
      prom([
        ['tgi_queue_size', 'gauge', 'Requests waiting in the queue.', e.waiting],
        ['tgi_batch_current_size', 'gauge', 'Current batch size.', e.running],
        ['tgi_request_count', 'counter', 'Total requests.', e.stats.requests],
        ['tgi_request_generated_tokens_total', 'counter', 'Generated tokens.', e.stats.generatedTokens],
        ['tgi_request_input_length_total', 'counter', 'Input tokens.', e.stats.promptTokens],
      ]),
      'text/plain; version=0.0.4',
    );
    return true;
  }
  if (req.method === 'POST' && url === '/tokenize') {
    const b = obj(await readJson(req));
    const text = str(b['inputs']) ?? '';
    const ids = e.tokenize(text);
    sendJson(
      res,
      200,
      ids.map((id, k) => ({
        id,
        text: k === 0 ? '<s>' : e.detokenize([id]),
        start: Math.max(0, k - 1),
        stop: k,
      })),
    );
    return true;
  }
  if (req.method === 'POST' && (url === '/v1/completions' || url === '/v1/chat/completions')) {
    // TGI's Messages API (OpenAI-compatible), which current Hugging Face clients use.
    await openAiCompletions(req, res, e, { url, modelCheck: false });
    return true;
  }
  // `POST /` is TGI's compat route: `stream` picks /generate_stream or /generate (the latter
  // answered as a one-element array).
  const compat = url === '/';
  const b =
    req.method === 'POST' && (compat || url === '/generate' || url === '/generate_stream')
      ? obj(await readJson(req))
      : undefined;
  const streaming = url === '/generate_stream' || (compat && b?.['stream'] === true);
  if (b !== undefined) {
    const inputs = str(b['inputs']);
    const p = obj(b['parameters']);
    if (inputs === undefined) {
      sendJson(res, 422, {
        error: 'Input validation error: `inputs` cannot be empty',
        error_type: 'validation',
      });
      return true;
    }
    const maxNew = num(p['max_new_tokens']) ?? 100;
    const inputLength = e.tokenize(inputs).length;
    if (inputLength + maxNew > e.opts.ctx) {
      sendJson(res, 422, {
        error: `Input validation error: \`inputs\` tokens + \`max_new_tokens\` must be <= ${e.opts.ctx}. Given: ${inputLength} \`inputs\` tokens and ${maxNew} \`max_new_tokens\``,
        error_type: 'validation',
      });
      return true;
    }
    const seed = num(p['seed']) ?? 0;
    const signal = clientGone(req, res);
    const gen = e.generate(
      inputs,
      {
        maxTokens: maxNew,
        seed,
        samplerProfile: samplingKey(p, ['do_sample', 'temperature', 'top_k', 'top_p', 'repetition_penalty']),
      },
      signal,
    );
    let text = '';
    let index = 0;
    try {
      let next = await gen.next();
      if (streaming) startSse(res);
      while (next.done !== true) {
        const tok = next.value;
        next = await gen.next();
        index++;
        text += tok.text;
        if (streaming) {
          const last = next.done === true;
          const ev = {
            index,
            token: { id: tok.id, text: tok.text, logprob: -0.5, special: false },
            generated_text: last ? text : null,
            details: last
              ? { finish_reason: 'length', generated_tokens: index, input_length: inputLength, seed }
              : null,
          };
          res.write(`data:${JSON.stringify(ev)}\n\n`);
        }
      }
      if (streaming) res.end();
      else
        sendJson(
          res,
          200,
          compatWrap(compat, {
            generated_text: text,
            details: { finish_reason: 'length', generated_tokens: index, seed, prefill: [], tokens: [] },
          }),
        );
    } catch (err) {
      if (signal.aborted) return true;
      const { status, body } = errorOf(err instanceof SimError ? err : new SimError('invalid', String(err)));
      if (res.headersSent) res.end(`data:${JSON.stringify(body)}\n\n`);
      else sendJson(res, status, body);
    }
    return true;
  }
  return false;
}
