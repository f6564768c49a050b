/**
 * Hugging Face text-generation-inference, as the simulator speaks it. Followed sources
 * (huggingface/text-generation-inference, `router/src/lib.rs`, `router/src/server.rs`,
 * `router/src/validation.rs`, `docs/source/reference/metrics.md`):
 * - v1.4.5: `/info` with `max_input_length`, `model_dtype`, `model_device_type`,
 *   `waiting_served_ratio`, `max_batch_total_tokens`, `max_waiting_tokens`, `max_batch_size`;
 *   stream `details` `{finish_reason, generated_tokens, seed}` (no `input_length`);
 *   `/tokenize` and `/v1/chat/completions` since v1.4.0, `/v1/completions` since v1.4.5.
 * - v2.1.0: `/info` renames `max_input_length` to `max_input_tokens`, adds `max_client_batch_size`
 *   and `router`.
 * - v2.3.0 (30395b09, #2336): stream `details` gains `input_length`; `/info` drops the dtype,
 *   device and batching fields. Unchanged up to v3.3.6.
 * - Request parameters (`GenerateParameters`, `router/src/validation.rs`): `frequency_penalty` and
 *   `grammar` since v1.4.1 (ignored before, as every unknown field is); a JSON grammar needs
 *   `properties` since v2.3.0 (#2309); 422 for `temperature <= 0`, `top_p` outside (0, 1),
 *   `top_k <= 0`, `frequency_penalty` outside [-2, 2], more stop sequences than
 *   `max_stop_sequences` (4). A stop sequence stays in the text (`StopSequenceCriteria`), finish
 *   reason `stop_sequence`. A JSON grammar makes the output exactly `outputForSchema(schema, seed)`.
 * - Messages API (`ChatRequest`, `router/src/chat.rs`, `server.rs` `chat_completions`): see
 *   `tgiChat`. `/chat_tokenize` since v2.3.0.
 * Every version: errors `{"error", "error_type"}` over HTTP and as a stream event
 * (`impl From<InferError> for Event`); `/health` 503 `{"error":"unhealthy","error_type":"healthcheck"}`;
 * metrics `tgi_request_input_length` and `tgi_request_generated_tokens` as histograms with 100
 * buckets of `max_input_tokens / 100` and `max_total_tokens / 100`, `tgi_request_count` and
 * `tgi_request_success` counters, `tgi_queue_size` and `tgi_batch_current_size` gauges
 * (metrics-exporter-prometheus: no `_total` suffix). The router starts only once the shards are
 * loaded (`LISTENS_WHILE_LOADING`). Versions come from `launch.sim.engine_version`; one that is no
 * release number ("sim-tgi-1") speaks the current format.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { releasedBefore } from '../../util/release-version.js';
import { outputForSchema } from '../schema-output.js';
import { SimError, type SimEngine, type SimFinish, type SimToken } from '../sim-engine.js';
import {
  clientGone,
  num,
  obj,
  readJson,
  samplingKey,
  sendJson,
  sendText,
  startSse,
  str,
} from '../http-util.js';
import {
  chatTemplate,
  openAiCompletions,
  stopStrings,
  type EngineFailure,
  type OpenAiErrors,
} from './openai-compat.js';

/** The wire differences between TGI releases that the simulator models. */
export interface TgiWire {
  /** Stream `details.input_length` (≥ 2.3.0). */
  readonly streamInputLength: boolean;
  /** `/info` layout: ≤ 2.0 (`max_input_length`), 2.1–2.2 (`max_input_tokens`), ≥ 2.3 (slimmed). */
  readonly info: '1.x' | '2.1' | '2.3';
  /** `/tokenize` and the Messages API (≥ 1.4.0). */
  readonly tokenize: boolean;
  /** `parameters.frequency_penalty` and `parameters.grammar` (≥ 1.4.1). */
  readonly grammar: boolean;
  /** A JSON grammar must have `properties` (≥ 2.3.0, #2309). */
  readonly grammarNeedsProperties: boolean;
  /** The Messages API's `response_format` (≥ 2.1.0). */
  readonly chatResponseFormat: boolean;
  /** `/chat_tokenize` and `stream_options.include_usage` (≥ 2.3.0). */
  readonly chatTokenize: boolean;
  /** Tool calls as `tool_calls` deltas, name first, and a separate usage chunk (≥ 3.2.0, `chat.rs`). */
  readonly toolDeltas: boolean;
  /** Messages API stream errors as `{"error": {"message", "http_status_code"}}` (≥ 3.0.0). */
  readonly openAiStreamErrors: boolean;
}

export function tgiWire(version: string): TgiWire {
  const before = (v: readonly [number, number, number]) => releasedBefore(version, v);
  return {
    streamInputLength: !before([2, 3, 0]),
    info: before([2, 1, 0]) ? '1.x' : before([2, 3, 0]) ? '2.1' : '2.3',
    tokenize: !before([1, 4, 0]),
    grammar: !before([1, 4, 1]),
    grammarNeedsProperties: !before([2, 3, 0]),
    chatResponseFormat: !before([2, 1, 0]),
    chatTokenize: !before([2, 3, 0]),
    toolDeltas: !before([3, 2, 0]),
    openAiStreamErrors: !before([3, 0, 0]),
  };
}

/** `--max-stop-sequences`' default, as `/info` reports it. */
const MAX_STOP_SEQUENCES = 4;

/**
 * TGI's parameter validation (`Validation::validate`), as the 422 message it answers, or
 * undefined. `chat`: the Messages API, where temperature 0 means greedy.
 */
function invalidParameter(p: Record<string, unknown>, w: TgiWire, chat: boolean): string | undefined {
  const t = num(p['temperature']);
  if (t !== undefined && t <= 0 && !(chat && t === 0)) return '`temperature` must be strictly positive';
  const rp = num(p['repetition_penalty']);
  if (rp !== undefined && rp <= 0) return '`repetition_penalty` must be strictly positive';
  const fp = num(p['frequency_penalty']);
  if (w.grammar && fp !== undefined && (fp < -2 || fp > 2))
    return '`frequency_penalty` must be >= -2.0 and <= 2.0';
  const tp = num(p['top_p']);
  if (tp !== undefined && (tp <= 0 || tp >= 1)) return '`top_p` must be > 0.0 and < 1.0';
  const tk = num(p['top_k']);
  if (tk !== undefined && tk <= 0) return '`top_k` must be strictly positive';
  const stops = stopStrings(p['stop']).length;
  if (stops > MAX_STOP_SEQUENCES)
    return `\`stop\` supports up to ${MAX_STOP_SEQUENCES} stop sequences. Given: ${stops}`;
  return undefined;
}

/** The schema of a JSON grammar (`{type: "json" | "json_object", value}`), or the 422 message. */
function grammarSchema(
  g: unknown,
  w: TgiWire,
): { schema: Record<string, unknown> } | { invalid: string } | undefined {
  if (!w.grammar || g === undefined || g === null) return undefined;
  const type = str(obj(g)['type']);
  let value: unknown = obj(g)['value'];
  if (type === 'json_schema') value = obj(value)['schema'];
  else if (type !== 'json' && type !== 'json_object') return undefined;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch (err) {
      return { invalid: `grammar is not valid: ${String(err)}` };
    }
  }
  const schema = obj(value);
  if (w.grammarNeedsProperties && schema['properties'] === undefined)
    return { invalid: "grammar is not valid: Grammar must have a 'properties' field" };
  return { schema };
}

/** The sampling parameters in the determinism key; penalties only when sent (older keys stay). */
function samplerProfileOf(
  p: Record<string, unknown>,
  names: readonly string[],
  optional: readonly string[],
): string {
  return samplingKey(p, [...names, ...optional.filter((n) => p[n] !== undefined)]);
}

/**
 * Generated tokens whose text is `pieces` (one piece per token) whatever the sampler drew, then
 * end-of-sequence: constrained decoding. Slots, pacing, faults and `max_tokens` are the engine's.
 */
async function* forcedTokens(
  e: SimEngine,
  prompt: string,
  pieces: readonly string[],
  o: { readonly maxTokens: number; readonly seed: number; readonly samplerProfile: string },
  signal: AbortSignal,
): AsyncGenerator<SimToken, SimFinish> {
  const gen = e.generate(
    prompt,
    {
      maxTokens: Math.min(o.maxTokens, pieces.length + 1),
      seed: o.seed,
      samplerProfile: o.samplerProfile,
      ignoreEos: true,
    },
    signal,
  );
  for (let k = 0; ; k++) {
    const next = await gen.next();
    if (next.done === true) return { ...next.value, finish: k > pieces.length ? 'eos' : 'length' };
    const piece = pieces[k];
    yield piece === undefined
      ? { id: e.eosId, text: '</s>', special: true }
      : { id: piece.charCodeAt(0) + 3, text: piece };
  }
}

function failureOf(e: SimError): { status: number; body: { error: string; error_type: string } } {
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
      return { status: 503, body: { error: 'unhealthy', error_type: 'healthcheck' } };
    case 'oom':
      return {
        status: 424,
        body: {
          error: `Request failed during generation: Server error: ${e.message}`,
          error_type: 'generation',
        },
      };
  }
}

const ctxMessage = (inputLength: number, maxNew: number, ctx: number) =>
  `Input validation error: \`inputs\` tokens + \`max_new_tokens\` must be <= ${ctx}. Given: ${inputLength} \`inputs\` tokens and ${maxNew} \`max_new_tokens\``;

const TYPE_OF_STATUS: Record<number, string> = { 422: 'validation', 429: 'overloaded', 424: 'generation' };

/** The Messages API's errors are TGI's own `ErrorResponse`, over HTTP and in the stream. */
const tgiOpenAiErrors: OpenAiErrors = {
  http: (res, f) => sendJson(res, f.status, { error: f.message, error_type: f.type }),
  stream: (f) => JSON.stringify({ error: f.message, error_type: f.type }),
  ctx: (promptTokens, maxTokens, ctx) => ({
    status: 422,
    type: 'validation',
    message: ctxMessage(promptTokens, maxTokens, ctx),
  }),
  failure: (se): EngineFailure => {
    const { status, body } = failureOf(se);
    return { status, type: TYPE_OF_STATUS[status] ?? body.error_type, message: body.error };
  },
};

/** Per-engine request histograms (`tgi_request_input_length`, `tgi_request_generated_tokens`). */
interface Histograms {
  readonly input: number[];
  readonly generated: number[];
  success: number;
}
const histograms = new WeakMap<SimEngine, Histograms>();
function histogramsOf(e: SimEngine): Histograms {
  let h = histograms.get(e);
  if (!h) {
    h = { input: [], generated: [], success: 0 };
    histograms.set(e, h);
  }
  return h;
}

function infoBody(e: SimEngine, w: TgiWire): Record<string, unknown> {
  const common = {
    model_id: e.opts.modelId,
    model_sha: null,
    model_pipeline_tag: 'text-generation',
    max_concurrent_requests: e.opts.slots,
    max_best_of: 2,
    max_stop_sequences: 4,
  };
  const batching = {
    waiting_served_ratio: 1.2,
    max_batch_total_tokens: e.opts.kvCapacityTokens,
    max_waiting_tokens: 20,
    max_batch_size: null,
  };
  const build = { version: e.opts.engineVersion, sha: null, docker_label: null };
  if (w.info === '1.x')
    return {
      ...common,
      model_dtype: 'torch.float16',
      model_device_type: 'cuda',
      max_input_length: e.opts.ctx - 1,
      max_total_tokens: e.opts.ctx,
      ...batching,
      validation_workers: 2,
      ...build,
    };
  const tail = {
    validation_workers: 2,
    max_client_batch_size: 4,
    router: 'text-generation-router',
    ...build,
  };
  if (w.info === '2.1')
    return {
      ...common,
      model_dtype: 'torch.float16',
      model_device_type: 'cuda',
      max_input_tokens: e.opts.ctx - 1,
      max_total_tokens: e.opts.ctx,
      ...batching,
      ...tail,
    };
  return { ...common, max_input_tokens: e.opts.ctx - 1, max_total_tokens: e.opts.ctx, ...tail };
}

function histogram(name: string, help: string, values: readonly number[], top: number): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (let x = 0; x < 100; x++) {
    const le = (top / 100) * (x + 1);
    out.push(`${name}_bucket{le="${le}"} ${values.filter((v) => v <= le).length}`);
  }
  out.push(
    `${name}_bucket{le="+Inf"} ${values.length}`,
    `${name}_sum ${values.reduce((a, b) => a + b, 0)}`,
    `${name}_count ${values.length}`,
  );
  return out;
}

function tgiMetrics(e: SimEngine): string {
  const h = histogramsOf(e);
  const scalar = (name: string, type: string, help: string, v: number) => [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} ${type}`,
    `${name} ${v}`,
  ];
  return `${[
    ...scalar('tgi_queue_size', 'gauge', 'Current queue size', e.waiting),
    ...scalar('tgi_batch_current_size', 'gauge', 'Current batch size', e.running),
    ...scalar('tgi_request_count', 'counter', 'Total number of requests', e.stats.requests),
    ...scalar('tgi_request_success', 'counter', 'Number of successful requests', h.success),
    ...histogram('tgi_request_input_length', 'Input token length per request', h.input, e.opts.ctx - 1),
    ...histogram('tgi_request_generated_tokens', 'Generated tokens per request', h.generated, e.opts.ctx),
  ].join('\n')}\n`;
}

/** `/tokenize`'s answer (`SimpleToken`s), which `/chat_tokenize` nests as `tokenize_response`. */
function tokensOf(e: SimEngine, text: string): { id: number; text: string; start: number; stop: number }[] {
  return e.tokenize(text).map((id, k) => ({
    id,
    text: k === 0 ? '<s>' : e.detokenize([id]),
    start: Math.max(0, k - 1),
    stop: k,
  }));
}

/** What a Messages API request generates: sampled text, a JSON grammar's output or a tool call. */
interface ChatPlan {
  readonly prompt: string;
  readonly maxTokens: number;
  readonly seed: number;
  readonly samplerProfile: string;
  readonly stop: string[];
  /** Forced output (a grammar); undefined: sampled text. */
  readonly pieces?: readonly string[];
  /** The pieces are this tool call's grammar text, streamed as `chat.rs` `ChatState` does. */
  readonly tool?: { readonly name: string; readonly id: string };
}

type ChatRefusal = { status: number; body: { error: string; error_type: string } };

const validation = (why: string): ChatRefusal => ({
  status: 422,
  body: { error: `Input validation error: ${why}`, error_type: 'validation' },
});
const toolError = (why: string): ChatRefusal => ({
  status: 422,
  body: { error: `Tool error: ${why}`, error_type: 'tool_error' },
});

/**
 * The id of the next tool call: one more than the largest integer id among the request's earlier
 * calls, "0" without any, a UUID when an earlier id is no integer (`ChatRequest::next_tool_call_id`).
 */
function nextToolCallId(messages: readonly unknown[]): string {
  let id = 0;
  for (const m of messages)
    for (const c of Array.isArray(obj(m)['tool_calls']) ? (obj(m)['tool_calls'] as unknown[]) : []) {
      const v = str(obj(c)['id']) ?? '';
      if (!/^\d+$/.test(v)) return randomUUID();
      id = Math.max(id, Number(v) + 1);
    }
  return String(id);
}

/**
 * A tool call as TGI's tool grammar writes it (`infer/tool_grammar.rs`: `{"function": {"_name":
 * name, ...arguments}}`), one character per token except `",` (a common merge, and the token
 * boundary `ChatState` needs to stream valid arguments).
 */
function toolCallPieces(name: string, parameters: unknown, seed: number): string[] {
  const schema = obj(parameters);
  const args =
    Object.keys(obj(schema['properties'])).length === 0
      ? {}
      : obj(JSON.parse(outputForSchema(schema, seed)) as unknown);
  const text = JSON.stringify({ function: { _name: name, ...args } });
  const pieces: string[] = [];
  for (let k = 0; k < text.length; k++) {
    const two = text.slice(k, k + 2);
    if (two === '",') {
      pieces.push(two);
      k++;
    } else pieces.push(text.charAt(k));
  }
  return pieces;
}

/**
 * The Messages API request as TGI reads it (`ChatRequest::try_into_generate`, v3.3.7): sampling
 * fields validated like `/generate`'s (temperature 0 is greedy), `presence_penalty` becomes
 * `repetition_penalty` (keyed under its own name), `response_format` a JSON grammar, and tools a
 * grammar over the functions (`tool_choice` auto adds `no_tool`, none drops the tools, a named
 * function keeps only it). Which tool the simulated model calls is drawn from the seed.
 */
function chatPlan(b: Record<string, unknown>, w: TgiWire): ChatPlan | ChatRefusal {
  const messages = b['messages'];
  if (!Array.isArray(messages)) return validation('`messages` is required');
  const invalid = invalidParameter(b, w, true);
  if (invalid !== undefined) return validation(invalid);
  const seed = num(b['seed']) ?? 0;
  const base = {
    maxTokens: num(b['max_tokens']) ?? 1024,
    seed,
    samplerProfile: samplerProfileOf(b, ['temperature', 'top_p'], ['frequency_penalty', 'presence_penalty']),
    stop: stopStrings(b['stop']),
  };
  const tools = w.toolDeltas && Array.isArray(b['tools']) ? (b['tools'] as unknown[]) : [];
  const format = w.chatResponseFormat ? b['response_format'] : undefined;
  if (tools.length > 0 && format !== undefined && format !== null)
    return toolError('Grammar and tools are mutually exclusive');
  const grammar = grammarSchema(format, w);
  if (grammar !== undefined && 'invalid' in grammar) return validation(grammar.invalid);
  if (grammar !== undefined)
    return {
      ...base,
      prompt: chatTemplate(messages, undefined) ?? '',
      pieces: [...outputForSchema(grammar.schema, seed)],
    };
  const choice = b['tool_choice'];
  const named =
    typeof choice === 'string' && !['auto', 'none', 'required'].includes(choice)
      ? choice
      : str(obj(obj(choice)['function'])['name']);
  if (tools.length === 0 || choice === 'none')
    return { ...base, prompt: chatTemplate(messages, undefined) ?? '' };
  const nameOf = (t: unknown) => str(obj(obj(t)['function'])['name']) ?? '';
  let tool: unknown;
  if (named !== undefined) {
    tool = tools.find((t) => nameOf(t) === named);
    if (tool === undefined) return toolError(`Tool with name ${named} not found`);
  } else {
    // auto offers `no_tool` too: choosing it makes TGI generate again without the tools.
    const k = seed % (tools.length + (choice === 'required' ? 0 : 1));
    if (k === tools.length) return { ...base, prompt: chatTemplate(messages, undefined) ?? '' };
    tool = tools[k];
  }
  const name = nameOf(tool);
  return {
    ...base,
    prompt: chatTemplate(messages, tools) ?? '',
    pieces: toolCallPieces(name, obj(obj(tool)['function'])['parameters'], seed),
    tool: { name, id: nextToolCallId(messages) },
  };
}

/** `serde_json::from_str::<Call>`: the text is a whole call; its `_name`. */
function callName(text: string): string | undefined {
  try {
    return str(obj(obj(JSON.parse(text) as unknown)['function'])['_name']);
  } catch {
    return undefined;
  }
}

/**
 * TGI's Messages API (`server.rs` `chat_completions`, `chat.rs` `ChatState`, v3.3.7). Chunks are
 * `data:{json}` with `id: ""`, `system_fingerprint` "{version}-native", `delta: {role, content}`
 * per token (end-of-sequence: empty content) and the last token's finish reason formatted with
 * end-of-sequence as "stop" (`FinishReason::format(true)`): "stop", "length", "stop_sequence"
 * (the stop sequence stays in the content). `stream_options.include_usage` (≥ 2.3.0) adds usage:
 * a chunk of its own with `choices: []` since v3.2.0, on the last chunk before. A tool call
 * (≥ 3.2.0) streams as `ChatState` does: the text is buffered until the function name is known,
 * then one `tool_calls` delta with the name and arguments "{", then argument fragments; the
 * closing brace is trimmed and end-of-sequence after the call yields no chunk, so the stream has
 * no finish reason. Stream errors: `{"error": {"message", "http_status_code": 422}}` since
 * v3.0.0 (`into_openai_event`), TGI's `ErrorResponse` before; `data:[DONE]` ends every stream.
 */
async function tgiChat(req: IncomingMessage, res: ServerResponse, e: SimEngine, w: TgiWire): Promise<void> {
  const b = obj(await readJson(req));
  const plan = chatPlan(b, w);
  if ('status' in plan) return sendJson(res, plan.status, plan.body);
  const promptTokens = e.tokenize(plan.prompt).length;
  if (promptTokens + plan.maxTokens > e.opts.ctx)
    return sendJson(res, 422, {
      error: ctxMessage(promptTokens, plan.maxTokens, e.opts.ctx),
      error_type: 'validation',
    });
  const stream = b['stream'] === true;
  const includeUsage = w.chatTokenize && obj(b['stream_options'])['include_usage'] === true;
  const created = Math.floor(Date.now() / 1000);
  const head = {
    id: '',
    created,
    model: e.opts.modelId,
    system_fingerprint: `${e.opts.engineVersion}-native`,
  };
  const chunk = (choices: unknown[], usage: unknown) =>
    `data:${JSON.stringify({ object: 'chat.completion.chunk', ...head, choices, usage })}\n\n`;
  const usageOf = (n: number) => ({
    prompt_tokens: promptTokens,
    completion_tokens: n,
    total_tokens: promptTokens + n,
  });
  const finishOf = (f: SimFinish) =>
    f.finish === 'eos' ? 'stop' : f.finish === 'stop' ? 'stop_sequence' : 'length';
  const signal = clientGone(req, res);
  const gen =
    plan.pieces === undefined
      ? e.generate(
          plan.prompt,
          {
            maxTokens: plan.maxTokens,
            seed: plan.seed,
            stop: plan.stop,
            samplerProfile: plan.samplerProfile,
          },
          signal,
        )
      : forcedTokens(e, plan.prompt, plan.pieces, plan, signal);
  let text = '';
  let produced = 0;
  let toolState: 'buffering' | 'tool' = 'buffering';
  let toolText = '';
  try {
    let next = await gen.next();
    if (stream) startSse(res);
    while (next.done !== true) {
      const tok = next.value;
      next = await gen.next();
      produced++;
      const end = next.done === true ? next.value : undefined;
      const finish = end === undefined ? null : finishOf(end);
      if (plan.tool === undefined) {
        if (tok.special !== true) text += tok.text;
        const delta = { role: 'assistant', content: tok.special === true ? '' : tok.text };
        const inline = end !== undefined && includeUsage && !w.toolDeltas ? usageOf(produced) : null;
        if (stream) res.write(chunk([{ index: 0, delta, logprobs: null, finish_reason: finish }], inline));
      } else {
        toolText += tok.text;
        let fragment: { name: string | null; arguments: string } | undefined;
        if (toolState === 'buffering') {
          const name = callName(`${toolText.replace(/[\s,}]+$/, '')}}}`);
          if (name !== undefined && callName(toolText) === undefined) {
            toolState = 'tool';
            fragment = { name, arguments: '{' };
          }
        } else if (callName(toolText) !== undefined) {
          toolState = 'buffering';
          const t = tok.text.trimEnd();
          fragment = { name: null, arguments: t.endsWith('}') ? t.slice(0, -1) : t };
        } else fragment = { name: null, arguments: tok.text };
        if (fragment !== undefined) {
          const delta = {
            role: 'assistant',
            tool_calls: [{ index: 0, id: plan.tool.id, type: 'function', function: fragment }],
          };
          if (stream) res.write(chunk([{ index: 0, delta, logprobs: null, finish_reason: finish }], null));
        }
      }
    }
    const end = next.value;
    const h = histogramsOf(e);
    h.input.push(promptTokens);
    h.generated.push(produced);
    h.success++;
    if (stream) {
      if (includeUsage && w.toolDeltas) res.write(chunk([], usageOf(produced)));
      res.end('data:[DONE]\n\n');
      return;
    }
    const call = plan.tool;
    const message =
      call === undefined
        ? { role: 'assistant', content: text }
        : {
            role: 'assistant',
            tool_calls: [
              {
                id: call.id,
                type: 'function',
                function: { description: null, name: call.name, arguments: JSON.stringify(argsOf(toolText)) },
              },
            ],
          };
    sendJson(res, 200, {
      object: 'chat.completion',
      ...head,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishOf(end) }],
      usage: usageOf(produced),
    });
  } catch (err) {
    if (signal.aborted) return;
    const { status, body } = failureOf(err instanceof SimError ? err : new SimError('invalid', String(err)));
    if (!res.headersSent) return sendJson(res, status, body);
    const event = w.openAiStreamErrors ? { error: { message: body.error, http_status_code: 422 } } : body;
    res.end(`data:${JSON.stringify(event)}\n\ndata:[DONE]\n\n`);
  }
}

/** A tool call's arguments: its grammar text's function object without `_name` (`chat.rs` `parse_output`). */
function argsOf(toolText: string): Record<string, unknown> {
  try {
    const f = { ...obj(obj(JSON.parse(toolText.replace(/<\/s>$/, '')) as unknown)['function']) };
    delete f['_name'];
    return f;
  } catch {
    return {};
  }
}

export async function tgiRoutes(req: IncomingMessage, res: ServerResponse, e: SimEngine): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0] ?? '/';
  const w = tgiWire(e.opts.engineVersion);
  if (req.method === 'GET' && url === '/health') {
    sendText(res, 200, '');
    return true;
  }
  if (req.method === 'GET' && url === '/info') {
    sendJson(res, 200, infoBody(e, w));
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    sendText(res, 200, tgiMetrics(e), 'text/plain; version=0.0.4');
    return true;
  }
  if (req.method === 'POST' && url === '/tokenize' && w.tokenize) {
    e.stats.tokenizeRequests++;
    const b = obj(await readJson(req));
    sendJson(res, 200, tokensOf(e, str(b['inputs']) ?? ''));
    return true;
  }
  if (req.method === 'POST' && url === '/v1/chat/completions' && w.tokenize) {
    await tgiChat(req, res, e, w);
    return true;
  }
  if (req.method === 'POST' && url === '/chat_tokenize' && w.chatTokenize) {
    e.stats.tokenizeRequests++;
    const plan = chatPlan(obj(await readJson(req)), w);
    if ('status' in plan) sendJson(res, plan.status, plan.body);
    else sendJson(res, 200, { tokenize_response: tokensOf(e, plan.prompt), templated_text: plan.prompt });
    return true;
  }
  if (req.method === 'POST' && url === '/v1/completions' && w.tokenize) {
    await openAiCompletions(req, res, e, { url, modelCheck: false, errors: tgiOpenAiErrors });
    return true;
  }
  // `POST /` is TGI's compat route: `stream` picks /generate_stream or /generate (the latter
  // answered as a one-element array).
  const compat = url === '/';
  if (req.method !== 'POST' || !(compat || url === '/generate' || url === '/generate_stream')) return false;
  const b = obj(await readJson(req));
  const streaming = url === '/generate_stream' || (compat && b['stream'] === true);
  const inputs = str(b['inputs']);
  const p = obj(b['parameters']);
  if (inputs === undefined || inputs === '') {
    sendJson(res, 422, {
      error: 'Input validation error: `inputs` cannot be empty',
      error_type: 'validation',
    });
    return true;
  }
  const maxNew = num(p['max_new_tokens']) ?? 100;
  const inputLength = e.tokenize(inputs).length;
  if (inputLength + maxNew > e.opts.ctx) {
    sendJson(res, 422, { error: ctxMessage(inputLength, maxNew, e.opts.ctx), error_type: 'validation' });
    return true;
  }
  const h = histogramsOf(e);
  h.input.push(inputLength);
  const invalid = invalidParameter(p, w, false);
  const grammar = grammarSchema(p['grammar'], w);
  if (invalid !== undefined || (grammar !== undefined && 'invalid' in grammar)) {
    const why = invalid ?? (grammar !== undefined && 'invalid' in grammar ? grammar.invalid : '');
    sendJson(res, 422, { error: `Input validation error: ${why}`, error_type: 'validation' });
    return true;
  }
  const seed = num(p['seed']) ?? 0;
  const details = p['details'] === true;
  const signal = clientGone(req, res);
  const samplerProfile = samplerProfileOf(
    p,
    ['do_sample', 'temperature', 'top_k', 'top_p', 'repetition_penalty'],
    w.grammar ? ['frequency_penalty'] : [],
  );
  const gen =
    grammar === undefined
      ? e.generate(inputs, { maxTokens: maxNew, seed, stop: stopStrings(p['stop']), samplerProfile }, signal)
      : forcedTokens(
          e,
          inputs,
          [...outputForSchema(grammar.schema, seed)],
          { maxTokens: maxNew, seed, samplerProfile },
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
      // The end-of-sequence token is streamed (special) but not part of the generated text.
      if (tok.special !== true) text += tok.text;
      if (!streaming) continue;
      const end = next.done === true ? next.value : undefined;
      const finish =
        end === undefined
          ? undefined
          : end.finish === 'eos'
            ? 'eos_token'
            : end.finish === 'stop'
              ? 'stop_sequence'
              : 'length';
      const streamDetails =
        end === undefined || !details
          ? null
          : {
              finish_reason: finish,
              generated_tokens: index,
              seed,
              ...(w.streamInputLength ? { input_length: inputLength } : {}),
            };
      const ev = {
        index,
        token: { id: tok.id, text: tok.text, logprob: -0.5, special: tok.special === true },
        generated_text: end === undefined ? null : text,
        details: streamDetails,
      };
      res.write(`data:${JSON.stringify(ev)}\n\n`);
    }
    h.generated.push(index);
    h.success++;
    if (streaming) {
      res.end();
      return true;
    }
    const end = next.value;
    const finish = end.finish === 'eos' ? 'eos_token' : end.finish === 'stop' ? 'stop_sequence' : 'length';
    sendJson(
      res,
      200,
      ((body: unknown) => (compat ? [body] : body))({
        generated_text: text,
        ...(details
          ? { details: { finish_reason: finish, generated_tokens: index, seed, prefill: [], tokens: [] } }
          : {}),
      }),
    );
  } catch (err) {
    if (signal.aborted) return true;
    const { status, body } = failureOf(err instanceof SimError ? err : new SimError('invalid', String(err)));
    if (res.headersSent) res.end(`data:${JSON.stringify(body)}\n\n`);
    else sendJson(res, status, body);
  }
  return true;
}
