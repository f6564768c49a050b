/** llama-server's native API (llama.cpp tools/server/README.md), as the simulator speaks it. */
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

const err = (res: ServerResponse, code: number, message: string, type: string) =>
  sendJson(res, code, { error: { code, message, type } });

/** C++ `std::stoi`, which llama-server parses slot ids with: a leading integer, else a throw. */
function stoi(text: string): number | undefined {
  const m = /^\s*([+-]?\d+)/.exec(text);
  if (!m?.[1]) return undefined;
  const n = Number(m[1]);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : undefined;
}

/**
 * `POST /slots/{id_slot}?action=…`, answered as by a llama-server started with `--slot-save-path`
 * (without it every action is a 501). Only `erase` is modelled. llama-server takes the id modulo
 * the slot count as an unsigned 64-bit value, so every integer, negative ones too, names some
 * slot, and the answer echoes the id as sent.
 */
async function slotAction(res: ServerResponse, e: SimEngine, idText: string, action: string | null) {
  const id = stoi(decodeURIComponent(idText));
  if (id === undefined) return err(res, 400, 'Invalid slot ID', 'invalid_request_error');
  if (action === 'save' || action === 'restore')
    return err(res, 501, `slot ${action} is not simulated`, 'not_supported_error');
  if (action !== 'erase') return err(res, 400, 'Invalid action', 'invalid_request_error');
  const index = Number(BigInt.asUintN(64, BigInt(id)) % BigInt(e.slots.length));
  sendJson(res, 200, { id_slot: id, n_erased: await e.eraseSlot(index) });
}

export async function llamacppRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
): Promise<boolean> {
  const [url = '/', query = ''] = (req.url ?? '/').split('?');
  // llama-server answers its health check on both paths (both stay open under --api-key).
  if (req.method === 'GET' && (url === '/health' || url === '/v1/health')) {
    if (e.loading()) err(res, 503, 'Loading model', 'unavailable_error');
    else sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (e.loading() && url !== '/metrics') {
    err(res, 503, 'Loading model', 'unavailable_error');
    return true;
  }
  if (req.method === 'GET' && url === '/props') {
    sendJson(res, 200, {
      default_generation_settings: { n_ctx: e.opts.ctx, params: { seed: 4294967295 } },
      total_slots: e.opts.slots,
      model_alias: e.opts.modelId,
      model_path: e.opts.modelId,
      build_info: e.opts.engineVersion,
    });
    return true;
  }
  if (req.method === 'GET' && url === '/slots') {
    sendJson(
      res,
      200,
      e.slots.map((s, id) => ({
        id,
        n_ctx: e.opts.ctx,
        speculative: false,
        is_processing: s.busy,
        // llama-server reports the cache only for slots that have served a request.
        ...(s.used ? { n_prompt_tokens: s.cachedTokens } : {}),
      })),
    );
    return true;
  }
  const slotPath = req.method === 'POST' ? /^\/slots\/([^/]+)$/.exec(url) : null;
  if (slotPath?.[1] !== undefined) {
    await slotAction(res, e, slotPath[1], new URLSearchParams(query).get('action'));
    return true;
  }
  if (req.method === 'POST' && url === '/tokenize') {
    const b = obj(await readJson(req));
    sendJson(res, 200, { tokens: e.tokenize(str(b['content']) ?? '', b['add_special'] === true) });
    return true;
  }
  if (req.method === 'POST' && url === '/detokenize') {
    const b = obj(await readJson(req));
    sendJson(res, 200, {
      content: e.detokenize(Array.isArray(b['tokens']) ? (b['tokens'] as number[]) : []),
    });
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    sendText(
      res,
      200,
      prom([
        [
          'llamacpp:prompt_tokens_total',
          'counter',
          'Number of prompt tokens processed.',
          e.stats.promptTokens,
        ],
        [
          'llamacpp:tokens_predicted_total',
          'counter',
          'Number of generation tokens processed.',
          e.stats.generatedTokens,
        ],
        ['llamacpp:requests_processing', 'gauge', 'Number of requests processing.', e.running],
        ['llamacpp:requests_deferred', 'gauge', 'Number of requests deferred.', e.waiting],
        ['llamacpp:kv_cache_usage_ratio', 'gauge', 'KV-cache usage. 1 means 100 percent usage.', e.kvUsage],
      ]),
      'text/plain; version=0.0.4',
    );
    return true;
  }
  if (req.method === 'POST' && url === '/completion') {
    const b = obj(await readJson(req));
    const prompt = str(b['prompt']);
    const nPredict = num(b['n_predict']) ?? 16;
    if (prompt === undefined) {
      err(res, 400, "Field 'prompt' is required", 'invalid_request_error');
      return true;
    }
    const signal = clientGone(req, res);
    const stream = b['stream'] === true;
    let slot = -1;
    const gen = e.generate(
      prompt,
      {
        maxTokens: nPredict,
        seed: num(b['seed']) ?? 0,
        cachePrompt: b['cache_prompt'] !== false,
        samplerProfile: samplingKey(b, ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty']),
        onSlot: (i) => (slot = i),
      },
      signal,
    );
    let content = '';
    let predicted = 0;
    const promptN = e.tokenize(prompt).length;
    try {
      let next = await gen.next();
      if (stream) startSse(res);
      while (next.done !== true) {
        predicted++;
        content += next.value.text;
        if (stream) {
          res.write(
            `data: ${JSON.stringify({ index: 0, content: next.value.text, tokens: [next.value.id], stop: false, id_slot: -1, tokens_predicted: predicted, tokens_evaluated: promptN })}\n\n`,
          );
        }
        next = await gen.next();
      }
      const final = {
        index: 0,
        content: stream ? '' : content,
        tokens: [],
        id_slot: slot,
        stop: true,
        model: e.opts.modelId,
        tokens_predicted: predicted,
        tokens_evaluated: promptN,
        stop_type: 'limit',
        timings: { prompt_n: promptN, predicted_n: predicted },
      };
      if (stream) res.end(`data: ${JSON.stringify(final)}\n\n`);
      else sendJson(res, 200, final);
    } catch (e2) {
      if (signal.aborted) return true;
      const se = e2 instanceof SimError ? e2 : new SimError('invalid', String(e2));
      const code =
        se.kind === 'ctx' || se.kind === 'invalid'
          ? 400
          : se.kind === 'loading' || se.kind === 'refused'
            ? 503
            : 500;
      if (res.headersSent)
        res.end(
          `data: ${JSON.stringify({ error: { code, message: se.message, type: 'server_error' } })}\n\n`,
        );
      else err(res, code, se.message, code === 400 ? 'invalid_request_error' : 'server_error');
    }
    return true;
  }
  return false;
}
