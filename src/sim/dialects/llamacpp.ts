/**
 * llama-server's native API as the simulator speaks it, following the pinned source
 * (ggml-org/llama.cpp de3ff815ea7d559ee917f063901b8986f038abc6, `tools/server/`:
 * `server-context.cpp` routes and slot logic, `server-task.cpp` result JSON, `server-common.cpp`
 * error bodies and embeddings) and checked against transcripts of the real server
 * (test/fixtures/llamacpp/, test/sim/llamacpp-dialect.test.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimError, type SimEngine, type SimFinish } from '../sim-engine.js';
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

/** What llama-server's command line decides about the simulated server (`llorch sim` flags). */
export interface LlamacppSimOptions {
  /** `--embeddings`: `/embedding` and `/v1/embeddings` are served (completions still are). */
  readonly embeddings?: boolean | undefined;
  /**
   * `--pooling`. Absent: the model's own, and the simulated model, like the generated tiny GGUF,
   * declares none, so `/v1/embeddings` refuses and `/embedding` answers one vector per token.
   */
  readonly pooling?: 'none' | 'mean' | 'cls' | 'last' | undefined;
  /**
   * Frame a mid-stream error as builds before the pinned one did: an SSE field of its own,
   * `error: {code, message, type}` (`server_sent_event(sink, "error", error_data)`,
   * ggml-org/llama.cpp 03d4bccb `examples/server/server.cpp`). Default: the pinned framing,
   * `data: {"error": {code, message, type}}`.
   */
  readonly streamErrorField?: boolean | undefined;
}

const NO_EMBEDDINGS = 'This server does not support embeddings. Start it with `--embeddings`';

/**
 * The held-back part of llama-server's streaming text (`find_stopping_strings`,
 * `server-context.cpp`): text that ends with the start of a stop string is not sent until the
 * next token settles it; a complete stop string ends generation and is never sent.
 */
function stopScan(unsent: string, stops: readonly string[]): { full: number } | { partial: boolean } {
  let full = -1;
  for (const w of stops) {
    const at = unsent.indexOf(w);
    if (at >= 0 && (full < 0 || at < full)) full = at;
  }
  if (full >= 0) return { full };
  const partial = stops.some((w) => {
    for (let n = Math.min(w.length - 1, unsent.length); n > 0; n--)
      if (unsent.endsWith(w.slice(0, n))) return true;
    return false;
  });
  return { partial };
}

const STOP_TYPE: Readonly<Record<SimFinish['finish'], string>> = {
  length: 'limit',
  eos: 'eos',
  stop: 'word',
};

/** `POST /embedding` and `/v1/embeddings` (`handle_embeddings_impl`, `server-context.cpp`). */
async function embeddings(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  o: LlamacppSimOptions,
  oai: boolean,
) {
  if (o.embeddings !== true) return err(res, 501, NO_EMBEDDINGS, 'not_supported_error');
  const pooling = o.pooling ?? 'none';
  if (oai && pooling === 'none')
    return err(
      res,
      400,
      "Pooling type 'none' is not OAI compatible. Please use a different pooling type",
      'invalid_request_error',
    );
  const b = obj(await readJson(req));
  // "content" is the native field: it answers in the native shape on either path.
  const input = b['input'] ?? b['content'];
  if (input === undefined)
    return err(res, 400, '"input" or "content" must be provided', 'invalid_request_error');
  const inputs = (Array.isArray(input) ? input : [input]).map((x) => String(x));
  if (oai && b['input'] !== undefined) {
    const data = inputs.map((text, index) => ({ embedding: e.embed(text), index, object: 'embedding' }));
    const tokens = inputs.reduce((n, text) => n + e.tokenize(text).length, 0);
    return sendJson(res, 200, {
      model: str(b['model']) ?? e.opts.modelId,
      object: 'list',
      usage: { prompt_tokens: tokens, total_tokens: tokens },
      data,
    });
  }
  // Native: a list of vectors per input, one when pooled, one per token without pooling.
  sendJson(
    res,
    200,
    inputs.map((text, index) => ({
      index,
      embedding:
        pooling === 'none' ? e.tokenize(text).map((_, k) => e.embed(`${text}\0${k}`)) : [e.embed(text)],
    })),
  );
}

export async function llamacppRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  o: LlamacppSimOptions = {},
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
    // `get_res_props`: it says nothing of embeddings, pooling or continuous batching.
    sendJson(res, 200, {
      default_generation_settings: { n_ctx: e.opts.ctx, params: { seed: 4294967295 } },
      total_slots: e.opts.slots,
      model_alias: e.opts.modelId,
      model_path: e.opts.modelId,
      endpoint_slots: true,
      endpoint_props: false,
      endpoint_metrics: true,
      build_info: e.opts.engineVersion,
      is_sleeping: false,
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
    // The pinned build's names and help (test/fixtures/llamacpp/metrics.txt): prompt tokens
    // exclude cached ones, and there is no KV-usage gauge.
    sendText(
      res,
      200,
      prom([
        [
          'llamacpp:prompt_tokens_total',
          'counter',
          'Number of prompt tokens processed, excluding cached tokens',
          e.stats.promptTokens - e.stats.cachedPromptTokens,
        ],
        [
          'llamacpp:prompt_tokens_cached_total',
          'counter',
          'Number of prompt tokens reused from the cache',
          e.stats.cachedPromptTokens,
        ],
        [
          'llamacpp:tokens_predicted_total',
          'counter',
          'Number of generation tokens processed',
          e.stats.generatedTokens,
        ],
        ['llamacpp:requests_processing', 'gauge', 'Number of requests processing', e.running],
        ['llamacpp:requests_deferred', 'gauge', 'Number of requests deferred', e.waiting],
      ]),
      'text/plain; version=0.0.4',
    );
    return true;
  }
  if (req.method === 'POST' && (url === '/embedding' || url === '/embeddings' || url === '/v1/embeddings')) {
    await embeddings(req, res, e, o, url === '/v1/embeddings');
    return true;
  }
  if (req.method === 'POST' && (url === '/rerank' || url === '/reranking' || url === '/v1/rerank')) {
    // Only `--reranking` (a model with a classification head) serves it; the simulator never does.
    err(
      res,
      501,
      'This server does not support reranking. Start it with `--reranking`',
      'not_supported_error',
    );
    return true;
  }
  if (req.method === 'POST' && url === '/completion') {
    await completion(req, res, e, o);
    return true;
  }
  return false;
}

/**
 * `POST /completion`: one frame per sampled token (text held back while it may start a stop
 * string), the end-of-sequence token counted with no text, then the final frame with the stop
 * type, counts and timings (`server_task_result_cmpl_partial/final::to_json_non_oaicompat`). A
 * failure before the first token is an HTTP error; after it, an error frame in the chosen framing.
 */
async function completion(req: IncomingMessage, res: ServerResponse, e: SimEngine, o: LlamacppSimOptions) {
  const b = obj(await readJson(req));
  const prompt = str(b['prompt']);
  const nPredict = num(b['n_predict']) ?? 16;
  if (prompt === undefined) return err(res, 400, "Field 'prompt' is required", 'invalid_request_error');
  const stops = (Array.isArray(b['stop']) ? (b['stop'] as unknown[]) : []).filter(
    (x): x is string => typeof x === 'string' && x !== '',
  );
  const signal = clientGone(req, res);
  const stream = b['stream'] === true;
  let slot = -1;
  let cached = 0;
  const gen = e.generate(
    prompt,
    {
      maxTokens: nPredict,
      seed: num(b['seed']) ?? 0,
      cachePrompt: b['cache_prompt'] !== false,
      ignoreEos: b['ignore_eos'] === true,
      stop: stops,
      samplerProfile: samplingKey(b, ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty']),
      onSlot: (i) => (slot = i),
      onPrefill: (n) => (cached = n),
    },
    signal,
  );
  const promptN = e.tokenize(prompt).length;
  // llama-server always computes the prompt's last token again, whatever the cache holds.
  const timings = (predicted: number) => {
    const cacheN = Math.min(cached, Math.max(0, promptN - 1));
    return { cache_n: cacheN, prompt_n: promptN - cacheN, predicted_n: predicted };
  };
  let text = '';
  let sent = 0;
  let predicted = 0;
  let stoppingWord = '';
  try {
    let next = await gen.next();
    if (stream) startSse(res);
    while (next.done !== true) {
      predicted++;
      const tok = next.value;
      if (tok.special !== true) text += tok.text;
      const scan = stopScan(text.slice(sent), stops);
      let content = '';
      if ('full' in scan) {
        stoppingWord = stops.find((w) => text.slice(sent).indexOf(w) === scan.full) ?? '';
        text = text.slice(0, sent + scan.full);
        content = text.slice(sent);
      } else if (!scan.partial) content = text.slice(sent);
      sent += content.length;
      if (stream) {
        const frame = {
          index: 0,
          content,
          tokens: [tok.id],
          stop: false,
          id_slot: -1,
          tokens_predicted: predicted,
          tokens_evaluated: promptN,
          // The frame of the token that completed a stop string carries the timings.
          ...('full' in scan ? { timings: timings(predicted) } : {}),
        };
        res.write(`data: ${JSON.stringify(frame)}\n\n`);
      }
      next = await gen.next();
    }
    const final = {
      index: 0,
      content: stream ? '' : text,
      tokens: [],
      id_slot: slot,
      stop: true,
      model: e.opts.modelId,
      tokens_predicted: predicted,
      tokens_evaluated: promptN,
      prompt,
      truncated: false,
      stop_type: STOP_TYPE[next.value.finish],
      stopping_word: stoppingWord,
      tokens_cached: promptN + Math.max(0, predicted - 1),
      timings: timings(predicted),
    };
    if (stream) res.end(`data: ${JSON.stringify(final)}\n\n`);
    else sendJson(res, 200, final);
  } catch (e2) {
    if (signal.aborted) return;
    const se = e2 instanceof SimError ? e2 : new SimError('invalid', String(e2));
    const code =
      se.kind === 'ctx' || se.kind === 'invalid'
        ? 400
        : se.kind === 'loading' || se.kind === 'refused'
          ? 503
          : 500;
    const type = code === 400 ? 'invalid_request_error' : code === 503 ? 'unavailable_error' : 'server_error';
    const detail = { code, message: se.message, type };
    if (!res.headersSent) err(res, code, se.message, type);
    else if (o.streamErrorField === true) res.end(`error: ${JSON.stringify(detail)}\n\n`);
    else res.end(`data: ${JSON.stringify({ error: detail })}\n\n`);
  }
}
