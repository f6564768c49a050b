/**
 * Triton Inference Server with the TensorRT-LLM backend (KServe v2 protocol, the model
 * configuration and generate extensions), as the simulator speaks it, over one of the two stock
 * model repositories of `triton-repository.ts` (`--triton-ensemble legacy|current`).
 *
 * Request handling follows Triton's sources (triton-inference-server/server `src/http_server.cc`
 * at e1db8a60, 2.73.0dev; triton-inference-server/core `src/infer_request.cc`, `src/model.cc`
 * at 73aad7c3):
 * - `generate` / `generate_stream`: each key of the JSON body (and of its nested `parameters`)
 *   that names a declared input becomes that tensor; any other key becomes a request parameter
 *   (`ConvertGenerateRequest` → `SetTritonParameterFromJsonParameter`), which the TensorRT-LLM
 *   backend never reads — so an undeclared `random_seed` is accepted and has no effect. The
 *   simulator records such keys (`GET /__sim/triton`). A missing required input is refused
 *   with core's `ValidateRequestInputs` message (400).
 * - `infer`: a decoupled model (the streaming ensemble and `tensorrt_llm`) is refused with 501
 *   "HTTP end point doesn't support models with decoupled transaction policy"
 *   (`CheckTransactionPolicy`); on the others an undeclared input is refused with 400
 *   "unexpected inference input '<name>' for model '<model>'" (`Model::GetInput`, INVALID_ARG
 *   → 400 in `HttpCodeFromError`).
 * - An unknown model: 400 "Request for unknown model: '<name>' is not found"
 *   (core `model_repository_manager.cc`).
 * - `GET /v2/models/{m}/config`: the model's configuration as `ModelConfigToJson` renders it;
 *   the `tensorrt_llm` model's `gpt_model_path` names an engine directory whose `config.json`
 *   (written at start, as TensorRT-LLM's `Engine.save` would) states the TensorRT-LLM version
 *   (`--engine-version`) and `build_config.max_seq_len` (`--ctx`).
 *
 * Responses follow the TensorRT-LLM backend (NVIDIA/TensorRT-LLM
 * `triton_backend/inflight_batcher_llm/src/model_instance_state.cc` at c8c6df08): in streaming
 * mode one response per decoding step with only that step's tokens (`--triton-tokens-per-response`
 * above 1 stands for speculative decoding, where a step accepts several); `num_input_tokens` /
 * `num_output_tokens` (that response's tokens) when the request set `return_num_input_tokens` /
 * `return_num_output_tokens`; one-element outputs as plain JSON values (`ExactMappingOutput`).
 * The end-of-sequence token ends the stream and is neither sent nor counted.
 *
 * Sampling and constraints, as the backend takes them: every declared sampling input the request
 * gives (`temperature`, `top_k`, `top_p`, `repetition_penalty`, and `presence_penalty`,
 * `frequency_penalty`, `min_p` when given) is part of what the stream depends on; `stop_words`
 * end the sequence on a stop word, whose text stays in the output as TensorRT-LLM leaves it
 * (the executor keeps the stop tokens; NVIDIA/TensorRT-LLM `tensorrt_llm/executor/result.py`
 * trims them only in its own API); `guided_decoding_guide_type` `json` / `json_schema` with
 * `guided_decoding_guide` (tensorrtllm_backend `inflight_batcher_llm/src/utils.cc`
 * `getGuidedDecodingParamsFromTensors` at c2e65b88) make the text exactly
 * `outputForSchema(schema, seed)`, where the `tensorrt_llm` model has guided decoding configured
 * (`guided_decoding_backend` xgrammar and `xgrammar_tokenizer_info_path`, as the current
 * repository here does). The preprocessing model's `tokenizer_dir` parameter names
 * `--triton-tokenizer-dir` when given (unfilled otherwise), the directory whose
 * `tokenizer_config.json` holds the model's chat template.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outputForSchema } from '../schema-output.js';
import { SimError, type SimEngine, type SimToken } from '../sim-engine.js';
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
import {
  ENSEMBLES,
  PREPROCESSING,
  configInput,
  configOutput,
  metadataType,
  type TensorDecl,
  type TritonEnsembleVariant,
} from './triton-repository.js';

const TRITON_VERSION = '2.53.0';

export interface TritonSimOptions {
  /** Which stock model repository the server holds. */
  readonly ensemble: TritonEnsembleVariant;
  /** Names of the repository's models (the pool's `launch.triton`). */
  readonly models: {
    readonly ensemble: string;
    readonly preprocessing: string;
    readonly tensorrtLlm: string;
  };
  /** Tokens per streamed response (1; more stands for speculative decoding). */
  readonly tokensPerResponse: number;
  /** The tokenizer directory the preprocessing model names (`tokenizer_dir`); unfilled when absent. */
  readonly tokenizerDir?: string | undefined;
}

export const TRITON_SIM_DEFAULTS: TritonSimOptions = {
  ensemble: 'current',
  models: { ensemble: 'ensemble', preprocessing: 'preprocessing', tensorrtLlm: 'tensorrt_llm' },
  tokensPerResponse: 1,
};

const POSTPROCESSING = 'postprocessing';

interface SimModel {
  readonly config: Record<string, unknown>;
  readonly inputs: readonly TensorDecl[];
  readonly outputs: readonly TensorDecl[];
  readonly platform: string;
  /** Decoupled (streaming) models cannot be served by HTTP `infer`. */
  readonly decoupled: boolean;
}

/** `[request id: …] ` as core prefixes request errors (`InferenceRequest::LogRequest`). */
const logRequest = (id: string | undefined) =>
  `[request id: ${id === undefined || id === '' ? '<id_unknown>' : id}] `;

/**
 * Writes the engine directory's `config.json` (once per content: the directory name is its
 * digest, so replicas and restarts share it and nothing accumulates).
 */
function writeEngineDir(e: SimEngine): string {
  const content = `${JSON.stringify(
    {
      version: e.opts.engineVersion,
      pretrained_config: { architecture: 'LlamaForCausalLM', dtype: 'float16' },
      build_config: {
        max_input_len: Math.max(1, e.opts.ctx - 1),
        max_seq_len: e.opts.ctx,
        max_batch_size: e.opts.slots,
        max_beam_width: 1,
      },
    },
    null,
    4,
  )}\n`;
  const dir = join(
    tmpdir(),
    'llama-orch-sim-trtllm',
    createHash('sha256').update(content).digest('hex').slice(0, 16),
  );
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `config.json.${process.pid}`);
  writeFileSync(tmp, content);
  renameSync(tmp, join(dir, 'config.json'));
  return dir;
}

/** One simulated Triton server: its model repository, routes and metrics. */
export class TritonDialect {
  readonly engineDir: string;
  readonly #e: SimEngine;
  readonly #o: TritonSimOptions;
  readonly #models: ReadonlyMap<string, SimModel>;
  /** Keys of generate requests that named no declared input (Triton made them parameters). */
  readonly #ignored = new Map<string, number>();
  readonly #infers = new Map<string, number>();
  /** The `tensorrt_llm` model has guided decoding configured. */
  readonly #guided: boolean;

  constructor(e: SimEngine, o: TritonSimOptions = TRITON_SIM_DEFAULTS) {
    this.#e = e;
    this.#o = o;
    this.engineDir = writeEngineDir(e);
    const m = o.models;
    const batch = e.opts.slots;
    const ens = ENSEMBLES[o.ensemble];
    this.#guided = ens.inputs.some((d) => d[0] === 'guided_decoding_guide_type');
    const trtInputs: readonly TensorDecl[] = [
      ['input_ids', 'TYPE_INT32', [-1], true],
      ['input_lengths', 'TYPE_INT32', [1]],
      ['request_output_len', 'TYPE_INT32', [1]],
      ['streaming', 'TYPE_BOOL', [1], true],
    ];
    const trtOutputs: readonly TensorDecl[] = [
      ['output_ids', 'TYPE_INT32', [-1, -1]],
      ['sequence_length', 'TYPE_INT32', [-1]],
    ];
    const base = (name: string, platform: string, backend: string) => ({
      name,
      platform,
      backend,
      runtime: '',
      version_policy: { latest: { num_versions: 1 } },
      max_batch_size: batch,
    });
    const param = (v: string) => ({ string_value: v });
    this.#models = new Map<string, SimModel>([
      [
        m.ensemble,
        {
          inputs: ens.inputs,
          outputs: ens.outputs,
          platform: 'ensemble',
          decoupled: true,
          config: {
            ...base(m.ensemble, 'ensemble', ''),
            input: ens.inputs.map(configInput),
            output: ens.outputs.map(configOutput),
            ensemble_scheduling: {
              step: [m.preprocessing, m.tensorrtLlm, POSTPROCESSING].map((model_name) => ({
                model_name,
                model_version: -1,
              })),
            },
            parameters: {},
          },
        },
      ],
      [
        m.preprocessing,
        {
          inputs: PREPROCESSING.inputs,
          outputs: PREPROCESSING.outputs,
          platform: 'python',
          decoupled: false,
          config: {
            ...base(m.preprocessing, '', 'python'),
            input: PREPROCESSING.inputs.map(configInput),
            output: PREPROCESSING.outputs.map(configOutput),
            parameters: {
              tokenizer_dir: param(o.tokenizerDir ?? '${tokenizer_dir}'),
              add_special_tokens: param('${add_special_tokens}'),
            },
          },
        },
      ],
      [
        m.tensorrtLlm,
        {
          inputs: trtInputs,
          outputs: trtOutputs,
          platform: 'tensorrtllm',
          decoupled: true,
          config: {
            ...base(m.tensorrtLlm, '', 'tensorrtllm'),
            model_transaction_policy: { decoupled: true },
            // Only the inputs and outputs the ensemble wires here, not the backend's whole list.
            input: trtInputs.map(configInput),
            output: trtOutputs.map(configOutput),
            parameters: {
              gpt_model_type: param('inflight_fused_batching'),
              gpt_model_path: param(this.engineDir),
              max_beam_width: param('1'),
              max_tokens_in_paged_kv_cache: param(String(e.opts.kvCapacityTokens)),
              max_attention_window_size: param('${max_attention_window_size}'),
              batch_scheduler_policy: param('guaranteed_no_evict'),
              kv_cache_free_gpu_mem_fraction: param('0.9'),
              exclude_input_in_output: param('true'),
              enable_kv_cache_reuse: param('true'),
              // Guided decoding exists from the current repository on (tensorrtllm_backend c1b90df).
              ...(this.#guided
                ? {
                    guided_decoding_backend: param('xgrammar'),
                    xgrammar_tokenizer_info_path: param(join(this.engineDir, 'xgrammar_tokenizer_info.json')),
                  }
                : {}),
            },
          },
        },
      ],
      [
        POSTPROCESSING,
        {
          inputs: [['TOKENS_BATCH', 'TYPE_INT32', [-1, -1]]],
          outputs: [['OUTPUT', 'TYPE_STRING', [-1]]],
          platform: 'python',
          decoupled: false,
          config: { ...base(POSTPROCESSING, '', 'python'), parameters: {} },
        },
      ],
    ]);
  }

  /** What the server saw, for tests and operators (`GET /__sim/triton`). */
  observed(): Record<string, unknown> {
    return {
      ensemble: this.#o.ensemble,
      models: this.#o.models,
      engine_dir: this.engineDir,
      ignored_parameters: Object.fromEntries(this.#ignored),
      infer_requests: Object.fromEntries(this.#infers),
    };
  }

  metrics(): string {
    const e = this.#e;
    const l = `model="${this.#o.models.ensemble}",version="1"`;
    const t = `model="${this.#o.models.tensorrtLlm}",version="1"`;
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
        `${t},request_type="active"`,
      ],
      [
        'nv_trt_llm_kv_cache_block_metrics',
        'gauge',
        'TRT LLM KV cache block metrics.',
        e.kvUsage,
        `${t},kv_cache_block_type="fraction"`,
      ],
    ]);
  }

  async routes(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    const e = this.#e;
    const ready = !e.loading();
    if (req.method === 'GET' && (url === '/v2/health/live' || url === '/v2/health/ready')) {
      sendText(res, url.endsWith('live') || ready ? 200 : 400, '');
      return true;
    }
    if (req.method === 'GET' && url === '/__sim/triton') {
      sendJson(res, 200, this.observed());
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
      sendText(res, 200, this.metrics(), 'text/plain; charset=utf-8');
      return true;
    }
    const match = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?(\/[a-z_]+)?$/.exec(url);
    if (!match) return false;
    const name = decodeURIComponent(match[1] ?? '');
    const action = match[2];
    const model = this.#models.get(name);
    if (model === undefined) {
      sendJson(res, 400, { error: `Request for unknown model: '${name}' is not found` });
      return true;
    }
    if (req.method === 'GET' && action === '/ready') {
      sendText(res, ready ? 200 : 400, '');
      return true;
    }
    if (req.method === 'GET' && action === undefined) {
      const meta = (d: TensorDecl) => ({ name: d[0], datatype: metadataType(d[1]), shape: [-1, ...d[2]] });
      sendJson(res, 200, {
        name,
        versions: ['1'],
        platform: model.platform,
        inputs: model.inputs.map(meta),
        outputs: model.outputs.map(meta),
      });
      return true;
    }
    if (req.method === 'GET' && action === '/config') {
      sendJson(res, 200, model.config);
      return true;
    }
    if (!ready) {
      sendJson(res, 400, { error: 'Model is not ready' });
      return true;
    }
    if (req.method === 'POST' && action === '/infer') {
      this.#infers.set(name, (this.#infers.get(name) ?? 0) + 1);
      await this.#infer(req, res, name, model);
      return true;
    }
    const streaming = action === '/generate_stream';
    if (req.method === 'POST' && (action === '/generate' || streaming) && name === this.#o.models.ensemble) {
      await this.#generate(req, res, name, model, streaming);
      return true;
    }
    return false;
  }

  /** Core's `ValidateRequestInputs`: every required input given (400 otherwise). */
  #missingRequired(model: string, decl: readonly TensorDecl[], given: readonly string[], id?: string) {
    const missing = decl.filter((d) => d[3] !== true && !given.includes(d[0]));
    if (missing.length === 0 && given.length <= decl.length) return undefined;
    const required = decl.filter((d) => d[3] !== true).length;
    const list = (names: readonly string[]) => `[${names.map((n) => `'${n}'`).join(',')}]`;
    const range =
      required === decl.length
        ? `expected ${decl.length} inputs but got ${given.length} inputs`
        : `expected number of inputs between ${required} and ${decl.length} but got ${given.length} inputs`;
    return (
      `${logRequest(id)}${range} for model '${model}'. Got input(s) ${list(given)}, but missing required ` +
      `input(s) ${list(missing.map((d) => d[0]))}. Please provide all required input(s).`
    );
  }

  /**
   * The text pieces a guide forces (one per token), or undefined without a guide. A type the
   * backend does not know leaves the request unguided, as `getGuidedDecodingParamsFromTensors`
   * finds no mapping for it.
   */
  #guide(tensors: ReadonlyMap<string, unknown>, seed: number): string[] | undefined {
    const type = str(tensors.get('guided_decoding_guide_type'));
    if (!this.#guided || (type !== 'json' && type !== 'json_schema')) return undefined;
    let schema: Record<string, unknown> | undefined;
    if (type === 'json_schema') {
      const guide = str(tensors.get('guided_decoding_guide'));
      if (guide === undefined) throw new Error("guided decoding type 'json_schema' needs a guide");
      const parsed = JSON.parse(guide) as unknown;
      schema = obj(parsed);
    }
    const text = outputForSchema(schema, seed);
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += 3) pieces.push(text.slice(i, i + 3));
    return pieces;
  }

  async #infer(req: IncomingMessage, res: ServerResponse, name: string, model: SimModel): Promise<void> {
    if (model.decoupled) {
      sendJson(res, 501, {
        error: "HTTP end point doesn't support models with decoupled transaction policy",
      });
      return;
    }
    const b = obj(await readJson(req));
    const inputs = Array.isArray(b['inputs']) ? (b['inputs'] as unknown[]).map(obj) : [];
    const given = inputs.map((i) => String(i['name']));
    const id = typeof b['id'] === 'string' ? b['id'] : undefined;
    const missing = this.#missingRequired(name, model.inputs, given, id);
    if (missing !== undefined) {
      sendJson(res, 400, { error: missing });
      return;
    }
    const undeclared = given.find((g) => !model.inputs.some((d) => d[0] === g));
    if (undeclared !== undefined) {
      sendJson(res, 400, { error: `unexpected inference input '${undeclared}' for model '${name}'` });
      return;
    }
    if (name !== this.#o.models.preprocessing) {
      sendJson(res, 400, { error: `the simulator does not run model '${name}' on its own` });
      return;
    }
    const query = inputs.find((i) => i['name'] === 'QUERY');
    const text = Array.isArray(query?.['data']) ? String((query['data'] as unknown[])[0]) : '';
    this.#e.stats.tokenizeRequests++;
    const ids = this.#e.tokenize(text);
    sendJson(res, 200, {
      model_name: name,
      model_version: '1',
      outputs: [
        { name: 'INPUT_ID', datatype: 'INT32', shape: [1, ids.length], data: ids },
        { name: 'REQUEST_INPUT_LEN', datatype: 'INT32', shape: [1, 1], data: [ids.length] },
      ],
    });
  }

  async #generate(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    model: SimModel,
    streaming: boolean,
  ): Promise<void> {
    const b = obj(await readJson(req));
    const id = typeof b['id'] === 'string' ? b['id'] : undefined;
    // Keys naming a declared input are tensors; every other key is a request parameter.
    const tensors = new Map<string, unknown>();
    const take = (o: Record<string, unknown>, top: boolean) => {
      for (const [k, v] of Object.entries(o)) {
        if (top && k === 'id') continue;
        if (top && k === 'parameters' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
          take(obj(v), false);
          continue;
        }
        if (model.inputs.some((d) => d[0] === k)) tensors.set(k, v);
        else this.#ignored.set(k, (this.#ignored.get(k) ?? 0) + 1);
      }
    };
    take(b, true);
    const missing = this.#missingRequired(name, model.inputs, [...tensors.keys()], id);
    if (missing !== undefined) {
      sendJson(res, 400, { error: missing });
      return;
    }
    const text = str(tensors.get('text_input')) ?? '';
    const flag = (k: string) => tensors.get(k) === true;
    const countIn = flag('return_num_input_tokens');
    const countOut = flag('return_num_output_tokens');
    // Streaming responses carry new tokens only; a single answer starts with the prompt unless
    // excluded (the request's input, else the `tensorrt_llm` model's parameter, "true" here).
    const echo = !streaming && tensors.get('exclude_input_in_output') === false;
    const sampled = Object.fromEntries(tensors);
    // The optional penalties join the key only when given, so requests without them sample as before.
    const optional = ['presence_penalty', 'frequency_penalty', 'min_p'].filter((k) => tensors.has(k));
    const seed = num(tensors.get(ENSEMBLES[this.#o.ensemble].seedInput)) ?? 0;
    const stop = Array.isArray(tensors.get('stop_words'))
      ? (tensors.get('stop_words') as unknown[]).filter((w): w is string => typeof w === 'string')
      : typeof tensors.get('stop_words') === 'string'
        ? [tensors.get('stop_words') as string]
        : [];
    let guided: string[] | undefined;
    try {
      guided = this.#guide(tensors, seed);
    } catch (err) {
      sendJson(res, 400, { error: `${logRequest(id)}${String(err instanceof Error ? err.message : err)}` });
      return;
    }
    const signal = clientGone(req, res);
    const gen = this.#e.generate(
      text,
      {
        maxTokens: num(tensors.get('max_tokens')) ?? 16,
        // An undeclared seed never arrives: the backend samples without one (0 here).
        seed,
        samplerProfile: samplingKey(sampled, [
          'temperature',
          'top_k',
          'top_p',
          'repetition_penalty',
          ...optional,
        ]),
        // Under a guide the grammar decides the text and its end.
        ignoreEos: num(tensors.get('end_id')) === -1 || guided !== undefined,
        ...(stop.length > 0 && guided === undefined ? { stop } : {}),
      },
      signal,
    );
    const promptTokens = this.#e.tokenize(text).length;
    const response = (out: string, n: number) => ({
      model_name: name,
      model_version: '1',
      text_output: out,
      ...(countIn ? { num_input_tokens: promptTokens } : {}),
      ...(countOut ? { num_output_tokens: n } : {}),
    });
    let all = echo ? text : '';
    let total = 0;
    let group: SimToken[] = [];
    const flush = () => {
      if (group.length === 0) return;
      const out = group.map((t) => t.text).join('');
      total += group.length;
      if (streaming) res.write(`data: ${JSON.stringify(response(out, group.length))}\n\n`);
      all += out;
      group = [];
    };
    try {
      let next = await gen.next();
      if (streaming) startSse(res);
      let piece = 0;
      while (next.done !== true) {
        if (guided !== undefined) {
          const t = guided[piece++];
          if (t === undefined) {
            await gen.return(undefined as never);
            break;
          }
          group.push({ id: next.value.id, text: t });
          if (group.length >= this.#o.tokensPerResponse) flush();
        } else if (next.value.special !== true) {
          // End of sequence: the generation ends with it (the next step reports done).
          group.push(next.value);
          if (group.length >= this.#o.tokensPerResponse) flush();
        }
        next = await gen.next();
      }
      flush();
      if (streaming) res.end();
      else sendJson(res, 200, response(all, total + (echo ? promptTokens : 0)));
    } catch (err) {
      if (signal.aborted) return;
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
  }
}
