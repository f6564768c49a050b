/**
 * Triton Inference Server with the TensorRT-LLM backend (KServe v2 protocol + the generate
 * extension), as the simulator speaks it. The model is served as `ensemble`, with the TRT-LLM
 * `preprocessing` model for token counts.
 */
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

export const TRITON_MODEL = 'ensemble';
const TRITON_VERSION = '2.53.0';

export function tritonMetrics(e: SimEngine): string {
  const l = `model="${TRITON_MODEL}",version="1"`;
  return prom([
    [
      'nv_inference_request_success',
      'counter',
      'Number of successful inference requests.',
      e.stats.requests - e.stats.errors,
      l,
    ],
    ['nv_inference_request_failure', 'counter', 'Number of failed inference requests.', e.stats.errors, l],
    [
      'nv_inference_pending_request_count',
      'gauge',
      'Instantaneous number of pending requests.',
      e.waiting,
      l,
    ],
    [
      'nv_trt_llm_request_metrics',
      'gauge',
      'TRT LLM request metrics.',
      e.running,
      `${l},request_type="active"`,
    ],
    [
      'nv_trt_llm_kv_cache_block_metrics',
      'gauge',
      'TRT LLM KV cache block metrics.',
      e.kvUsage,
      `${l},kv_cache_block_type="fraction"`,
    ],
  ]);
}

export async function tritonRoutes(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0] ?? '/';
  const ready = !e.loading();
  if (req.method === 'GET' && (url === '/v2/health/live' || url === '/v2/health/ready')) {
    sendText(res, url.endsWith('live') || ready ? 200 : 400, '');
    return true;
  }
  if (req.method === 'GET' && url === '/v2') {
    sendJson(res, 200, {
      name: 'triton',
      version: TRITON_VERSION,
      extensions: [
        'classification',
        'sequence',
        'model_repository',
        'schedule_policy',
        'model_configuration',
        'system_shared_memory',
        'cuda_shared_memory',
        'binary_tensor_data',
        'parameters',
        'statistics',
        'trace',
        'logging',
        'generate',
      ],
    });
    return true;
  }
  if (req.method === 'GET' && url === '/metrics') {
    sendText(res, 200, tritonMetrics(e), 'text/plain; charset=utf-8');
    return true;
  }
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?(\/[a-z_]+)?$/.exec(url);
  if (!m) return false;
  const [, model, action] = m;
  if (model !== TRITON_MODEL && model !== 'preprocessing') {
    sendJson(res, 400, { error: `Request for unknown model: '${model ?? ''}' is not found` });
    return true;
  }
  if (req.method === 'GET' && action === '/ready') {
    sendText(res, ready ? 200 : 400, '');
    return true;
  }
  if (req.method === 'GET' && action === undefined) {
    sendJson(res, 200, {
      name: model,
      versions: ['1'],
      platform: 'ensemble',
      inputs: [
        { name: 'text_input', datatype: 'BYTES', shape: [-1] },
        { name: 'max_tokens', datatype: 'INT32', shape: [-1] },
        { name: 'stream', datatype: 'BOOL', shape: [-1] },
        { name: 'random_seed', datatype: 'UINT64', shape: [-1] },
      ],
      outputs: [{ name: 'text_output', datatype: 'BYTES', shape: [-1] }],
    });
    return true;
  }
  if (req.method === 'GET' && action === '/config') {
    sendJson(res, 200, {
      name: model,
      platform: 'ensemble',
      max_batch_size: e.opts.slots,
      parameters: {
        trtllm_version: { string_value: e.opts.engineVersion },
        max_tokens_in_paged_kv_cache: { string_value: String(e.opts.kvCapacityTokens) },
        max_seq_len: { string_value: String(e.opts.ctx) },
      },
    });
    return true;
  }
  if (!ready) {
    sendJson(res, 400, { error: 'Model is not ready' });
    return true;
  }
  if (req.method === 'POST' && model === 'preprocessing' && action === '/infer') {
    const b = obj(await readJson(req));
    const inputs = Array.isArray(b['inputs']) ? (b['inputs'] as unknown[]).map(obj) : [];
    const query = inputs.find((i) => i['name'] === 'QUERY');
    const text = Array.isArray(query?.['data']) ? String((query['data'] as unknown[])[0]) : '';
    const ids = e.tokenize(text);
    sendJson(res, 200, {
      model_name: 'preprocessing',
      model_version: '1',
      outputs: [
        { name: 'INPUT_ID', datatype: 'INT32', shape: [1, ids.length], data: ids },
        { name: 'REQUEST_INPUT_LEN', datatype: 'INT32', shape: [1, 1], data: [ids.length] },
      ],
    });
    return true;
  }
  const streaming = action === '/generate_stream';
  if (req.method === 'POST' && (action === '/generate' || streaming)) {
    const b = obj(await readJson(req));
    const text = str(b['text_input']);
    if (text === undefined) {
      sendJson(res, 400, { error: "input 'text_input' is required" });
      return true;
    }
    const signal = clientGone(req, res);
    const gen = e.generate(
      text,
      {
        maxTokens: num(b['max_tokens']) ?? 16,
        seed: num(b['random_seed']) ?? 0,
        samplerProfile: samplingKey(b, ['temperature', 'top_k', 'top_p', 'repetition_penalty']),
      },
      signal,
    );
    let out = '';
    try {
      let next = await gen.next();
      if (streaming) startSse(res);
      while (next.done !== true) {
        out += next.value.text;
        if (streaming)
          res.write(
            `data: ${JSON.stringify({ model_name: TRITON_MODEL, model_version: '1', text_output: next.value.text })}\n\n`,
          );
        next = await gen.next();
      }
      if (streaming) res.end();
      else sendJson(res, 200, { model_name: TRITON_MODEL, model_version: '1', text_output: out });
    } catch (err) {
      if (signal.aborted) return true;
      const se = err instanceof SimError ? err : new SimError('invalid', String(err));
      const message =
        se.kind === 'oom'
          ? `Encountered an error in forwardAsync: ${se.message}`
          : se.kind === 'ctx'
            ? `Prompt length + max_tokens exceeds the maximum sequence length: ${se.message}`
            : se.message;
      const body = { error: message };
      if (res.headersSent) res.end(`data: ${JSON.stringify(body)}\n\n`);
      else sendJson(res, se.kind === 'refused' || se.kind === 'loading' ? 503 : 400, body);
    }
    return true;
  }
  return false;
}
