/**
 * llama-server's native API as the simulator speaks it, following the pinned source
 * (ggml-org/llama.cpp de3ff815ea7d559ee917f063901b8986f038abc6, `tools/server/`:
 * `server-context.cpp` routes and slot logic, `server-task.cpp` result JSON, `server-common.cpp`
 * error bodies and embeddings) and checked against transcripts of the real server
 * (test/fixtures/llamacpp/, test/sim/llamacpp-dialect.test.ts).
 */
import { randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { outputForSchema } from '../schema-output.js';
import { SimError, type SimEngine, type SimFinish, type SimToken } from '../sim-engine.js';
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
import { applyChatTemplate, TemplateError, toolChoiceOf } from './llamacpp-template.js';

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
  /**
   * `--jinja` (default on in the pinned build, `use_jinja = true` in `common/common.h`): off,
   * `tools` and a `tool_choice` other than `auto` are refused on the chat routes.
   */
  readonly jinja?: boolean | undefined;
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

/** Sampling fields of `/completion` (`params_from_json_cmpl`) that enter the determinism key. */
const SAMPLING_NAMES = ['temperature', 'top_k', 'top_p', 'min_p', 'repeat_penalty'] as const;
/** Keyed only when sent, so requests without them keep the streams they always had. */
const PENALTY_NAMES = ['presence_penalty', 'frequency_penalty'] as const;

function samplerProfileOf(b: Record<string, unknown>): string {
  return samplingKey(b, [...SAMPLING_NAMES, ...PENALTY_NAMES.filter((n) => b[n] !== undefined)]);
}

/** A request's `stop` list (the native endpoint takes an array; the chat one also a string). */
function stopList(v: unknown): string[] {
  if (typeof v === 'string') return v === '' ? [] : [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : [];
}

/**
 * A request's `json_schema` as llama-server reads it (a grammar the sampler must follow): the
 * simulator emits the schema's deterministic instance instead of sampled text, one character
 * per token. An empty schema means any JSON object, as in `oaicompat_chat_params_parse`.
 */
function schemaOf(v: unknown): Record<string, unknown> | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const schema = v as Record<string, unknown>;
  return Object.keys(schema).length === 0 ? { type: 'object' } : schema;
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
      // The simulator's ChatML template renders tools and tool calls (with Jinja on).
      chat_template_caps: { supports_tools: o.jinja !== false, supports_tool_calls: o.jinja !== false },
    });
    return true;
  }
  if (req.method === 'GET' && url === '/v1/models') {
    // `get_res_model_info` (tools/server/server-context.cpp, llama.cpp de3ff815): the simulator's
    // tokenizer is one token per byte, a byte-level vocabulary: LLAMA_VOCAB_TYPE_BPE (2).
    sendJson(res, 200, {
      object: 'list',
      data: [
        {
          id: e.opts.modelId,
          aliases: [],
          tags: [],
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: 'llamacpp',
          meta: { vocab_type: 2, n_vocab: 256, n_ctx: e.opts.ctx, n_ctx_train: e.opts.ctx },
        },
      ],
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
    e.stats.tokenizeRequests++;
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
  if (req.method === 'POST' && url === '/apply-template') {
    // `post_apply_template`: the chat parameters' prompt, nothing else of them.
    const b = obj(await readJson(req));
    try {
      sendJson(res, 200, { prompt: applyChatTemplate(b, o.jinja !== false) });
    } catch (e2) {
      templateError(res, e2);
    }
    return true;
  }
  if (req.method === 'POST' && (url === '/v1/chat/completions' || url === '/chat/completions')) {
    await chatCompletions(req, res, e, o);
    return true;
  }
  return false;
}

function templateError(res: ServerResponse, e2: unknown): void {
  if (!(e2 instanceof TemplateError)) throw e2;
  if (e2.status === 400) err(res, 400, e2.message, 'invalid_request_error');
  else err(res, 500, e2.message, 'server_error');
}

/** The HTTP status and type of a simulated failure (`format_error_response`, `server-common.cpp`). */
function failure(e2: unknown): { code: number; message: string; type: string } {
  const se = e2 instanceof SimError ? e2 : new SimError('invalid', String(e2));
  const code =
    se.kind === 'ctx' || se.kind === 'invalid'
      ? 400
      : se.kind === 'loading' || se.kind === 'refused'
        ? 503
        : 500;
  const type = code === 400 ? 'invalid_request_error' : code === 503 ? 'unavailable_error' : 'server_error';
  return { code, message: se.message, type };
}

/** `random_string()` of `server-common.cpp`: 32 alphanumerics, the tool call ids. */
function randomString(): string {
  const chars = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let out = '';
  for (let i = 0; i < 32; i++) out += chars[randomInt(chars.length)] ?? '0';
  return out;
}

/**
 * `POST /v1/chat/completions` with llama-server's `--jinja` chat handling: the prompt is the
 * chat template's ({@link applyChatTemplate}); with `tools` (and `tool_choice` not `none`) the
 * model calls the first tool, its arguments the deterministic instance of the tool's parameter
 * schema, and the choice ends with `finish_reason: "tool_calls"`. Chunks follow
 * `server_task_result_cmpl_partial::to_json_oaicompat_chat` and `…_final::to_json_oaicompat_chat_stream`
 * (`server-task.cpp`): a first delta `{role: "assistant", content: null}`, one delta per token
 * (`server_chat_msg_diff_to_json_oaicompat`, `server-chat.cpp`), a finishing chunk with an empty
 * delta, the usage chunk with empty `choices` when asked for, then `data: [DONE]`.
 */
async function chatCompletions(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  o: LlamacppSimOptions,
) {
  const b = obj(await readJson(req));
  let prompt: string;
  let choice: 'auto' | 'none' | 'required';
  try {
    prompt = applyChatTemplate(b, o.jinja !== false);
    choice = toolChoiceOf(b);
  } catch (e2) {
    return templateError(res, e2);
  }
  const seed = num(b['seed']) ?? 0;
  const tools = Array.isArray(b['tools']) ? (b['tools'] as unknown[]) : [];
  const tool = choice === 'none' ? undefined : obj(obj(tools[0])['function']);
  const format = obj(b['response_format']);
  const schema =
    format['type'] === 'json_schema'
      ? schemaOf(obj(format['json_schema'])['schema'] ?? {})
      : format['type'] === 'json_object'
        ? schemaOf(format['schema'] ?? {})
        : schemaOf(b['json_schema']);
  const call =
    tool === undefined || tools.length === 0
      ? undefined
      : { id: randomString(), name: str(tool['name']) ?? '', schema: schemaOf(tool['parameters'] ?? {}) };
  const forcedText =
    call !== undefined ? outputForSchema(call.schema, seed) : schema && outputForSchema(schema, seed);
  const forced = forcedText === undefined ? undefined : [...forcedText];
  const nPredict = num(b['n_predict']) ?? num(b['max_tokens']) ?? 16;
  const stops = forced === undefined ? stopList(b['stop']) : [];
  const stream = b['stream'] === true;
  const includeUsage = obj(b['stream_options'])['include_usage'] === true;
  const signal = clientGone(req, res);
  let cached = 0;
  const gen = e.generate(
    prompt,
    {
      maxTokens: forced === undefined ? nPredict : Math.min(nPredict, forced.length),
      seed,
      cachePrompt: b['cache_prompt'] !== false,
      ignoreEos: forced !== undefined || b['ignore_eos'] === true,
      stop: stops,
      samplerProfile: samplerProfileOf(b),
      onPrefill: (n) => (cached = n),
    },
    signal,
  );
  const promptN = e.tokenize(prompt).length;
  const id = `chatcmpl-${randomString()}`;
  const created = Math.floor(Date.now() / 1000);
  const head = { created, id, model: e.opts.modelId, system_fingerprint: e.opts.engineVersion };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    choices: [{ finish_reason: finish, index: 0, delta }],
    ...head,
    object: 'chat.completion.chunk',
  });
  const send = (body: unknown) =>
    res.write(`data: ${JSON.stringify(body)}

`);
  let text = '';
  let sent = 0;
  let predicted = 0;
  try {
    let next = await gen.next();
    if (stream) startSse(res);
    while (next.done !== true) {
      predicted++;
      const piece = forced?.[predicted - 1];
      const tok: SimToken = piece === undefined ? next.value : { id: 0, text: piece };
      if (tok.special !== true) text += tok.text;
      const scan = stopScan(text.slice(sent), stops);
      let delta = '';
      if ('full' in scan) {
        text = text.slice(0, sent + scan.full);
        delta = text.slice(sent);
      } else if (!scan.partial) delta = text.slice(sent);
      sent += delta.length;
      if (stream) {
        if (predicted === 1) send(chunk({ role: 'assistant', content: null }));
        if (call !== undefined && predicted === 1)
          send(
            chunk({
              tool_calls: [
                { index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: delta } },
              ],
            }),
          );
        else if (call !== undefined && delta !== '')
          send(chunk({ tool_calls: [{ index: 0, function: { arguments: delta } }] }));
        else if (delta !== '') send(chunk({ content: delta }));
      }
      next = await gen.next();
    }
    const end = next.value;
    const complete = forced !== undefined && predicted >= forced.length;
    const finish =
      end.finish === 'length' && !complete ? 'length' : call !== undefined ? 'tool_calls' : 'stop';
    const cacheN = Math.min(cached, Math.max(0, promptN - 1));
    const timings = { cache_n: cacheN, prompt_n: promptN - cacheN, predicted_n: predicted };
    const usage = {
      completion_tokens: predicted,
      prompt_tokens: promptN,
      total_tokens: predicted + promptN,
      prompt_tokens_details: { cached_tokens: cacheN },
    };
    if (!stream) {
      const message = {
        role: 'assistant',
        content: call === undefined ? text : '',
        ...(call === undefined
          ? {}
          : {
              tool_calls: [{ type: 'function', function: { name: call.name, arguments: text }, id: call.id }],
            }),
      };
      return sendJson(res, 200, {
        choices: [{ finish_reason: finish, index: 0, message }],
        ...head,
        object: 'chat.completion',
        usage,
        timings,
      });
    }
    const last = includeUsage
      ? [chunk({}, finish), { choices: [], ...head, object: 'chat.completion.chunk', usage, timings }]
      : [{ ...chunk({}, finish), timings }];
    for (const c of last) send(c);
    res.end('data: [DONE]\n\n');
  } catch (e2) {
    if (signal.aborted) return;
    const detail = failure(e2);
    if (!res.headersSent) err(res, detail.code, detail.message, detail.type);
    else if (o.streamErrorField === true) res.end(`error: ${JSON.stringify(detail)}\n\n`);
    else res.end(`data: ${JSON.stringify({ error: detail })}\n\n`);
  }
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
  const seed = num(b['seed']) ?? 0;
  const schema = schemaOf(b['json_schema']);
  // Constrained output ends when the grammar is complete: at its last character, or at n_predict.
  const forced = schema === undefined ? undefined : [...outputForSchema(schema, seed)];
  const stops = forced === undefined ? stopList(b['stop']) : [];
  const signal = clientGone(req, res);
  const stream = b['stream'] === true;
  let slot = -1;
  let cached = 0;
  const gen = e.generate(
    prompt,
    {
      maxTokens: forced === undefined ? nPredict : Math.min(nPredict, forced.length),
      seed,
      cachePrompt: b['cache_prompt'] !== false,
      ignoreEos: forced !== undefined || b['ignore_eos'] === true,
      stop: stops,
      samplerProfile: samplerProfileOf(b),
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
      const piece = forced?.[predicted - 1];
      const tok: SimToken =
        piece === undefined ? next.value : { id: e.tokenize(piece, false)[0] ?? 0, text: piece };
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
      stop_type:
        forced !== undefined && predicted >= forced.length ? STOP_TYPE.eos : STOP_TYPE[next.value.finish],
      stopping_word: stoppingWord,
      tokens_cached: promptN + Math.max(0, predicted - 1),
      timings: timings(predicted),
    };
    if (stream) res.end(`data: ${JSON.stringify(final)}\n\n`);
    else sendJson(res, 200, final);
  } catch (e2) {
    if (signal.aborted) return;
    const detail = failure(e2);
    if (!res.headersSent) err(res, detail.code, detail.message, detail.type);
    else if (o.streamErrorField === true) res.end(`error: ${JSON.stringify(detail)}\n\n`);
    else res.end(`data: ${JSON.stringify({ error: detail })}\n\n`);
  }
}
