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
 * Every version: errors `{"error", "error_type"}` over HTTP and as a stream event
 * (`impl From<InferError> for Event`); `/health` 503 `{"error":"unhealthy","error_type":"healthcheck"}`;
 * metrics `tgi_request_input_length` and `tgi_request_generated_tokens` as histograms with 100
 * buckets of `max_input_tokens / 100` and `max_total_tokens / 100`, `tgi_request_count` and
 * `tgi_request_success` counters, `tgi_queue_size` and `tgi_batch_current_size` gauges
 * (metrics-exporter-prometheus: no `_total` suffix). The router starts only once the shards are
 * loaded (`LISTENS_WHILE_LOADING`). Versions come from `launch.sim.engine_version`; one that is no
 * release number ("sim-tgi-1") speaks the current format.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { releasedBefore } from '../../util/release-version.js';
import { SimError, type SimEngine } from '../sim-engine.js';
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
import { openAiCompletions, stopStrings, type EngineFailure, type OpenAiErrors } from './openai-compat.js';

/** The wire differences between TGI releases that the simulator models. */
export interface TgiWire {
  /** Stream `details.input_length` (≥ 2.3.0). */
  readonly streamInputLength: boolean;
  /** `/info` layout: ≤ 2.0 (`max_input_length`), 2.1–2.2 (`max_input_tokens`), ≥ 2.3 (slimmed). */
  readonly info: '1.x' | '2.1' | '2.3';
  /** `/tokenize` and the Messages API (≥ 1.4.0). */
  readonly tokenize: boolean;
}

export function tgiWire(version: string): TgiWire {
  return {
    streamInputLength: !releasedBefore(version, [2, 3, 0]),
    info: releasedBefore(version, [2, 1, 0]) ? '1.x' : releasedBefore(version, [2, 3, 0]) ? '2.1' : '2.3',
    tokenize: !releasedBefore(version, [1, 4, 0]),
  };
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
  if (req.method === 'POST' && (url === '/v1/completions' || url === '/v1/chat/completions') && w.tokenize) {
    // TGI's Messages API (OpenAI-compatible), which current Hugging Face clients use.
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
  const seed = num(p['seed']) ?? 0;
  const details = p['details'] === true;
  const signal = clientGone(req, res);
  const gen = e.generate(
    inputs,
    {
      maxTokens: maxNew,
      seed,
      stop: stopStrings(p['stop']),
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
