/**
 * vLLM's OpenAI-compatible server, as the simulator speaks it, release by release
 * (`launch.sim.engine_version`; one that is no release number, "sim-vllm-1", speaks the current
 * format). Followed sources (vllm-project/vllm, upstream commits):
 * - v0.6.1.post2 (`9ba0817ff`): `ErrorResponse` flat with `object: "error"` (`protocol.py`),
 *   stream errors `{"error": <ErrorResponse>}` (`serving_engine.py`
 *   `create_streaming_error_response`) for a `ValueError` only; any other failure (the engine
 *   died) cuts the connection (`serving_completion.py`).
 * - #11752 (`33fc1e2e8`, v0.7.0): every stream exception becomes an error event, typed
 *   `BadRequestError`/400 whatever its cause, until #30134 (`769f27e70`) typed them by exception.
 * - #22099 (`370661856`, v0.10.1): `ErrorResponse` becomes `{"error": ErrorInfo}` and the stream
 *   error is that same body.
 * - main at `1892993bc` (February 2026): a dead engine core reads "EngineCore encountered an
 *   issue…" (`vllm/v1/engine/exceptions.py`); `/health` is 503 only when the engine is dead
 *   (`serve/instrumentator/health.py`), and the only other 503 is the elastic-EP scaling
 *   middleware's (`serve/elastic_ep/middleware.py`); embeddings only for a pooling model ("The
 *   model does not support Embeddings API", `pooling/embed/api_router.py`), completions only for a
 *   generating one; `vllm:kv_cache_usage_perc` (the older `vllm:gpu_cache_usage_perc` was removed
 *   by #29330); `vllm:cache_config_info` with `enable_prefix_caching` (on by default since v0.8.0).
 * vLLM does not listen until the model is loaded (`LISTENS_WHILE_LOADING`).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { releasedBefore } from '../../util/release-version.js';
import type { SimEngine, SimError } from '../sim-engine.js';
import { obj, readJson, sendJson, sendText, str } from '../http-util.js';
import { outputForSchema } from '../schema-output.js';
import {
  chatTemplate,
  openAiCompletions,
  type EngineFailure,
  type ForcedOutput,
  type OpenAiErrors,
} from './openai-compat.js';

/** The wire differences between vLLM releases that the simulator models. */
export interface VllmWire {
  /** `{"error": {...}}` bodies (≥ 0.10.1, #22099) instead of the flat `{"object": "error", ...}`. */
  readonly nestedErrors: boolean;
  /**
   * Every stream exception becomes an error event (≥ 0.7.0, #11752 `33fc1e2e8`); before, only a
   * `ValueError` did and anything else cut the connection.
   */
  readonly streamsEngineErrors: boolean;
  /**
   * Stream errors typed by exception (`InternalServerError`, 500, for an engine failure) since
   * #30134 (`769f27e70`, December 2025; taken as v0.14.0, the first release cut after it); before,
   * every one was sent as `BadRequestError`, 400, whatever its cause.
   */
  readonly typedStreamErrors: boolean;
  /** Automatic prefix caching when no flag says: on since v0.8.0 (the V1 engine's default), off before. */
  readonly prefixCachingDefault: boolean;
  /** The KV usage gauge's name. */
  readonly kvGauge: 'vllm:kv_cache_usage_perc' | 'vllm:gpu_cache_usage_perc';
}

export function vllmWire(version: string): VllmWire {
  const legacy = releasedBefore(version, [0, 10, 1]);
  return {
    nestedErrors: !legacy,
    streamsEngineErrors: !releasedBefore(version, [0, 7, 0]),
    typedStreamErrors: !releasedBefore(version, [0, 14, 0]),
    prefixCachingDefault: !releasedBefore(version, [0, 8, 0]),
    kvGauge: legacy ? 'vllm:gpu_cache_usage_perc' : 'vllm:kv_cache_usage_perc',
  };
}

/** vLLM's `ErrorResponse` of either release line. */
export function vllmErrorBody(w: VllmWire, f: EngineFailure): unknown {
  const info = { message: f.message, type: f.type, param: f.param ?? null, code: f.status };
  return w.nestedErrors ? { error: info } : { object: 'error', ...info };
}

/**
 * JSON as Python's `json.dumps` writes it (", " and ": " separators), which is how vLLM encodes
 * its stream error events; chunks go through pydantic's compact `model_dump_json`.
 */
export function pythonJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${pythonJson(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v);
}

const ENGINE_DEAD = 'EngineCore encountered an issue. See stack trace (above) for the root cause.';

function vllmErrors(w: VllmWire): OpenAiErrors {
  return {
    http: (res, f) =>
      f.status === 503
        ? // The scaling middleware's own body, not an ErrorResponse.
          sendJson(res, 503, { error: f.message })
        : sendJson(res, f.status, vllmErrorBody(w, f)),
    // Before 0.10.1 `{"error": <flat ErrorResponse>}`, since then the ErrorResponse itself.
    stream: (f, se) => {
      if (se.kind === 'oom' && !w.streamsEngineErrors) return undefined;
      const typed = w.typedStreamErrors ? f : { ...f, status: 400, type: 'BadRequestError' };
      return pythonJson(w.nestedErrors ? vllmErrorBody(w, typed) : { error: vllmErrorBody(w, typed) });
    },
    ctx: (promptTokens, maxTokens, ctx) => ({
      status: 400,
      type: 'BadRequestError',
      ...(w.nestedErrors ? { param: 'max_tokens' } : {}),
      message: w.nestedErrors
        ? `'max_tokens' or 'max_completion_tokens' is too large: ${maxTokens}. This model's maximum context length is ${ctx} tokens and your request has ${promptTokens} input tokens (${maxTokens} > ${ctx} - ${promptTokens}).`
        : `This model's maximum context length is ${ctx} tokens. However, you requested ${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
    }),
    failure: (se: SimError) =>
      se.kind === 'oom'
        ? // The engine core died of it; the API server reports the death, not the CUDA error.
          { status: 500, type: 'InternalServerError', message: ENGINE_DEAD }
        : se.kind === 'refused'
          ? {
              status: 503,
              type: 'ServiceUnavailable',
              message: 'The model is currently scaling. Please try again later.',
            }
          : { status: 400, type: 'BadRequestError', message: se.message },
  };
}

export async function vllmRoutes(req: IncomingMessage, res: ServerResponse, e: SimEngine): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0] ?? '/';
  const w = vllmWire(e.opts.engineVersion);
  const errors = vllmErrors(w);
  const embedder = e.opts.servedTask === 'embed';
  if (req.method === 'GET' && url === '/health') {
    sendText(res, 200, '');
    return true;
  }
  if (req.method === 'GET' && url === '/version') {
    sendJson(res, 200, { version: e.opts.engineVersion });
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    sendText(res, 200, vllmMetrics(e, w), 'text/plain; version=0.0.4; charset=utf-8');
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
          permission: [],
        },
      ],
    });
    return true;
  }
  if (req.method === 'POST' && url === '/tokenize') {
    e.stats.tokenizeRequests++;
    const b = obj(await readJson(req));
    // `TokenizeChatRequest` (messages, add_generation_prompt, tools): the templated prompt, counted
    // as the chat route counts it; the simulated template has no generation-prompt suffix.
    const chat = chatTemplate(b['messages'], b['tools']);
    const tokens =
      chat === undefined
        ? e.tokenize(str(b['prompt']) ?? '', b['add_special_tokens'] !== false)
        : e.tokenize(chat);
    sendJson(res, 200, { count: tokens.length, max_model_len: e.opts.ctx, tokens });
    return true;
  }
  if (req.method === 'POST' && url === '/v1/embeddings') {
    const b = obj(await readJson(req));
    if (!embedder) {
      // Current vLLM returns the ErrorResponse object from the route, which FastAPI sends as 200;
      // v0.6 answered 400 "Embedding API disabled" (`serving_embedding.py`). Either way the body
      // is an error, not a list.
      const message = w.nestedErrors ? 'The model does not support Embeddings API' : 'Embedding API disabled';
      const f = { status: 400, type: 'BadRequestError', message };
      sendJson(res, w.nestedErrors ? 200 : 400, vllmErrorBody(w, f));
      return true;
    }
    const input = b['input'];
    const inputs = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map(String) : undefined;
    if (inputs === undefined)
      return (errors.http(res, { status: 400, type: 'BadRequestError', message: 'input is required' }), true);
    // A pooling model runs on the same engine core as generation: a hung core stalls it, and an
    // out-of-memory core dies of it, with the death reported as for generation.
    while (e.faults.hang === true && !req.socket.destroyed) await new Promise((r) => setTimeout(r, 50));
    if (e.faults.oomAfterTokens !== undefined)
      return (errors.http(res, { status: 500, type: 'InternalServerError', message: ENGINE_DEAD }), true);
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
    if (embedder) {
      await readJson(req);
      const api = url === '/v1/completions' ? 'Completions' : 'Chat Completions';
      errors.http(res, {
        status: 400,
        type: 'BadRequestError',
        message: `The model does not support ${api} API`,
      });
      return true;
    }
    await openAiCompletions(req, res, e, {
      url,
      modelCheck: true,
      errors,
      forced: (b, seed) =>
        (url === '/v1/chat/completions' ? toolCallOf(e, b, seed) : undefined) ?? formatted(b, seed),
    });
    return true;
  }
  return false;
}

/**
 * `/metrics` in vLLM's names (prometheus_client adds `_total` to counters). `vllm:cache_config_info`
 * is vLLM's info gauge of its `CacheConfig`, every field a label; `enable_prefix_caching` among them.
 */
function vllmMetrics(e: SimEngine, w: VllmWire): string {
  const labels = `engine="0",model_name="${e.opts.modelId}"`;
  const rows: [string, string, string, number, string][] = [
    [
      'vllm:num_requests_running',
      'gauge',
      'Number of requests in model execution batches.',
      e.running,
      labels,
    ],
    ['vllm:num_requests_waiting', 'gauge', 'Number of requests waiting to be processed.', e.waiting, labels],
    [w.kvGauge, 'gauge', 'KV-cache usage. 1 means 100 percent usage.', e.kvUsage, labels],
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
  ];
  const out: string[] = [];
  for (const [name, type, help, value, l] of rows)
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${l}} ${value}`);
  const prefix = (e.opts.prefixCaching ?? w.prefixCachingDefault) ? 'True' : 'False';
  out.push(
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
    `vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="${prefix}",engine="0",gpu_memory_utilization="0.9"} 1.0`,
  );
  return `${out.join('\n')}\n`;
}

/**
 * `response_format` under structured outputs (`ChatCompletionRequest.to_sampling_params` and its
 * completions twin map it to `StructuredOutputsParams`): json_object any JSON object, json_schema
 * JSON matching `json_schema.schema`.
 */
function formatted(b: Record<string, unknown>, seed: number): ForcedOutput | undefined {
  const rf = obj(b['response_format']);
  if (rf['type'] === 'json_object') return { text: outputForSchema(undefined, seed) };
  if (rf['type'] === 'json_schema')
    return { text: outputForSchema(obj(obj(rf['json_schema'])['schema']), seed) };
  return undefined;
}

const BAD_REQUEST = { status: 400, type: 'BadRequestError' } as const;

/**
 * A tool call, as vLLM's chat route makes one (`chat_completion/serving.py`, IBM/vllm
 * `3302dc7f9c09`): without a tool parser any `tool_choice` but "none" is refused with its
 * message; with one, a named function or "required" always calls (finish "stop" for a named
 * function, "tool_calls" otherwise, as OpenAI does), and "auto" (the default with `tools`) calls
 * the first tool the last user turn names, else answers in text. Arguments match the tool's
 * `parameters` schema (constrained like `response_format`); the call id is derived from the seed
 * so replicas agree (vLLM's own are random, `chatcmpl-tool-…`).
 */
function toolCallOf(
  e: SimEngine,
  b: Record<string, unknown>,
  seed: number,
): ForcedOutput | EngineFailure | undefined {
  const tools = Array.isArray(b['tools']) ? b['tools'].map((t) => obj(obj(t)['function'])) : [];
  const choice = b['tool_choice'] ?? 'auto';
  if (tools.length === 0 || choice === 'none') return undefined;
  const tc = e.opts.toolCalling;
  if (tc?.parser === undefined) {
    if (choice === 'auto') {
      if (tc?.autoToolChoice === true) return undefined;
      return {
        ...BAD_REQUEST,
        message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
      };
    }
    // Python formats the named choice with its pydantic repr.
    const shown =
      typeof choice === 'string'
        ? choice
        : `type='function' function=ChatCompletionNamedFunction(name='${str(obj(obj(choice)['function'])['name']) ?? ''}')`;
    return { ...BAD_REQUEST, message: `tool_choice="${shown}" requires --tool-call-parser to be set` };
  }
  if (choice === 'auto' && !tc.autoToolChoice)
    return {
      ...BAD_REQUEST,
      message: '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    };
  const named = typeof choice === 'object' ? str(obj(obj(choice)['function'])['name']) : undefined;
  let tool: Record<string, unknown> | undefined;
  if (named !== undefined) {
    tool = tools.find((t) => t['name'] === named);
    if (tool === undefined)
      return {
        ...BAD_REQUEST,
        message: 'The tool specified in `tool_choice` does not match any of the specified `tools`',
      };
  } else if (choice === 'required') tool = tools[0];
  else {
    const turns = Array.isArray(b['messages']) ? b['messages'].map(obj) : [];
    const lastUser = str(turns.filter((m) => m['role'] === 'user').at(-1)?.['content']) ?? '';
    tool = tools.find((t) => {
      const name = str(t['name']);
      return name !== undefined && lastUser.includes(name);
    });
  }
  const name = str(tool?.['name']);
  if (tool === undefined || name === undefined) return undefined;
  const schema = obj(tool['parameters']);
  const id = `chatcmpl-tool-${createHash('sha256').update(`${seed}\0${name}`).digest('hex').slice(0, 32)}`;
  return {
    text: outputForSchema(schema, seed),
    toolCall: { id, name },
    finish: named === undefined ? 'tool_calls' : 'stop',
  };
}
