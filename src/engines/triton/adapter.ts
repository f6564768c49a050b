/** Triton Inference Server + TensorRT-LLM adapter (SPEC §7), over the KServe v2 REST API. */
import type {
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
  PromptInput,
} from '../adapter.js';
import type { ResolvedTritonModels } from '../../config/resolved-config.js';
import { EngineHttp } from '../engine-http.js';
import { OrchError } from '../../errors/orch-error.js';
import { ALL_SAMPLING, checkSupport, type RequestSupport } from '../request-support.js';
import { probeHealth } from '../probe-health.js';
import { gauge } from '../../util/prom-text.js';
import { readEngineFacts } from './engine-facts.js';
import { ensembleInterface, type EnsembleInterface } from './ensemble-interface.js';
import { mapTritonError } from './map-error.js';
import { readChatTemplate, renderChat, type ChatTemplateLookup } from './chat-template.js';
import { NO_TOOLS, toTritonRequest, tritonSupport } from './map-request.js';
import { TRITON_MODEL_DEFAULTS } from './model-names.js';
import { TritonStreamParser } from './parse-stream.js';
import type { InferResponse, ModelConfig, ServerMetadata } from './wire-types.js';

export interface TritonAdapterOptions {
  readonly baseUrl: string;
  /** Triton serves Prometheus metrics on its own port (`--metrics-port`, 8002 by default). */
  readonly metricsUrl: string;
  /** The repository's models (`launch.triton`); default: the stock `inflight_batcher_llm` names. */
  readonly models?: ResolvedTritonModels | undefined;
  /** Context length when the engine's own `config.json` cannot be read. */
  readonly ctx?: number | undefined;
  readonly modelDigest?: string | undefined;
  readonly connections?: number | undefined;
  /**
   * Triton takes no API key; on a pool-managerd node a guard in front of it does, and this key,
   * sent as a bearer token, is that guard's (`src/nodes/engine-guard.ts`).
   */
  readonly apiKey?: string | undefined;
}

/**
 * Before the instance showed anything of itself only tools, which never depend on it, are
 * refused here; the rest is decided by `generate` from the ensemble it reads.
 */
const UNREAD_SUPPORT: RequestSupport = {
  sampling: ALL_SAMPLING,
  stop: true,
  responseFormat: new Set(['json_object', 'json_schema']),
  messages: true,
  tools: NO_TOOLS,
};

/** `trtllm_version` when nothing in the repository states it: reported, never invented. */
export const TRTLLM_VERSION_UNKNOWN = 'unknown';

export class TritonAdapter implements EngineAdapter {
  readonly engine = 'triton' as const;
  readonly baseUrl: string;
  readonly metricsUrl: string;
  readonly #o: TritonAdapterOptions;
  readonly #http: EngineHttp;
  readonly #metrics: EngineHttp;
  readonly #models: ResolvedTritonModels;
  /** The ensemble's declared interface, read once per engine process (kept only when read). */
  #ensemble: Promise<EnsembleInterface> | undefined;
  /** What `checkRequest` decides from: the last interface, guided decoding and template seen. */
  #known: EnsembleInterface | undefined;
  #guided: boolean | undefined;
  #chat: ChatTemplateLookup | undefined;

  constructor(opts: TritonAdapterOptions) {
    this.#o = opts;
    this.baseUrl = opts.baseUrl;
    this.metricsUrl = opts.metricsUrl;
    this.#models = opts.models ?? TRITON_MODEL_DEFAULTS;
    const common = {
      engine: 'triton' as const,
      mapHttpError: mapTritonError,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
    };
    this.#http = new EngineHttp({ ...common, baseUrl: opts.baseUrl, connections: opts.connections });
    this.#metrics = new EngineHttp({ ...common, baseUrl: opts.metricsUrl, connections: 2 });
  }

  #config(model: string, signal: AbortSignal): Promise<ModelConfig> {
    return this.#http.json<ModelConfig>('GET', `/v2/models/${model}/config`, signal);
  }

  /**
   * What the ensemble declares (`GET /v2/models/{ensemble}/config`), so that no request names an
   * input it does not have. Read at the first request of this process (the self-test's decode);
   * a failed read is tried again next time.
   */
  ensemble(signal: AbortSignal): Promise<EnsembleInterface> {
    if (this.#ensemble === undefined) {
      const read = this.#config(this.#models.ensemble, signal).then((c) => {
        const e = ensembleInterface(c);
        this.#known = e;
        return e;
      });
      read.catch(() => {
        if (this.#ensemble === read) this.#ensemble = undefined;
      });
      this.#ensemble = read;
    }
    return this.#ensemble;
  }

  /** Server readiness, then the ensemble's own readiness (`/v2/models/{m}/ready`). */
  async probe(signal: AbortSignal): Promise<EngineHealth> {
    const server = await probeHealth(this.#http, '/v2/health/ready', signal, () => false);
    if (!server.ready) return server.live ? { ...server, loading: true } : server;
    const m = this.#models.ensemble;
    const model = await probeHealth(this.#http, `/v2/models/${m}/ready`, signal, () => true);
    return model.ready ? model : { ...model, detail: `model '${m}' is not ready` };
  }

  /**
   * Slots from the ensemble's `max_batch_size`; ctx and the TensorRT-LLM version from the engine
   * the `tensorrt_llm` model loads (`engine-facts.ts`); continuous batching from its
   * `gpt_model_type`.
   */
  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [server, ensemble, trtllm, metrics] = await Promise.all([
      this.#http.json<ServerMetadata>('GET', '/v2', signal),
      this.ensemble(signal),
      this.#config(this.#models.tensorrtLlm, signal).then((c) => readEngineFacts(c)),
      this.scrapeMetrics(signal).catch(() => ''),
      // Chat is optional: a preprocessing model that cannot be read leaves chat refused, nothing else.
      this.chatTemplate(signal).catch((err: unknown) => {
        this.#chat = {
          found: false,
          why: `the '${this.#models.preprocessing}' model's configuration cannot be read (${err instanceof Error ? err.message : String(err)})`,
        };
      }),
    ]);
    this.#guided = trtllm.guidedDecoding;
    const slots = ensemble.maxBatchSize ?? 1;
    const active = gauge(metrics, 'nv_trt_llm_request_metrics', 'request_type="active"');
    const version = trtllm.version;
    return {
      slotsTotal: slots,
      slotsFree: active === undefined ? undefined : Math.max(0, slots - active),
      ctx: trtllm.maxSeqLen ?? this.#o.ctx ?? 0,
      model: ensemble.model,
      // The replica-set identity covers both: Triton's server version and the TRT-LLM build.
      engineVersion: version === undefined ? server.version : `${server.version}+trtllm-${version}`,
      modelDigest: this.#o.modelDigest,
      features: {
        continuousBatching: trtllm.inflightBatching,
        interruptibleDecode: false,
        embeddings: false,
      },
      trtllmVersion: version ?? TRTLLM_VERSION_UNKNOWN,
    };
  }

  /**
   * The chat template of the tokenizer the preprocessing model loads (`chat-template.ts`), read
   * again on each call so that a replaced tokenizer is seen; the last answer is what
   * `checkRequest` decides from.
   */
  async chatTemplate(signal: AbortSignal): Promise<ChatTemplateLookup> {
    const config = await this.#config(this.#models.preprocessing, signal);
    const found = await readChatTemplate(config);
    this.#chat = found;
    return found;
  }

  /** The prompt text for `input`: the turns through the model's template, else the prompt. */
  async #prompt(input: PromptInput, signal: AbortSignal): Promise<string> {
    if (input.messages === undefined) return input.prompt;
    const found = this.#chat?.found === true ? this.#chat : await this.chatTemplate(signal);
    if (!found.found)
      throw new OrchError('INVALID_PARAMS', `messages: engine 'triton' cannot honour it (${found.why})`, {
        engine: 'triton',
      });
    return renderChat(found.chat, input.messages);
  }

  /** Prompt tokens after the model's chat template: rendered here, counted by the tokenizer model. */
  async countChatTokens(input: PromptInput, signal: AbortSignal): Promise<number> {
    return this.countTokens(await this.#prompt(input, signal), signal);
  }

  /** Through the tokenizer model's `infer` (KServe v2), which returns the token ids. */
  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<InferResponse>(
      'POST',
      `/v2/models/${this.#models.preprocessing}/infer`,
      signal,
      {
        inputs: [
          { name: 'QUERY', datatype: 'BYTES', shape: [1, 1], data: [text] },
          { name: 'REQUEST_OUTPUT_LEN', datatype: 'INT32', shape: [1, 1], data: [1] },
        ],
      },
    );
    const len = r.outputs.find((o) => o.name === 'REQUEST_INPUT_LEN')?.data[0];
    return len ?? r.outputs.find((o) => o.name === 'INPUT_ID')?.data.length ?? 0;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#metrics.text('GET', '/metrics', signal);
  }

  /**
   * What this instance honours, from what it last showed of itself (`properties()` reads the
   * ensemble's inputs, the guided decoding setup and the chat template): a field whose input the
   * ensemble does not declare is refused, never dropped. Before anything was read there is
   * nothing to decide from; `generate` then refuses the same fields from the ensemble it reads.
   */
  checkRequest(req: GenerateRequest): void {
    const known = this.#known;
    const chat = this.#chat;
    checkSupport(
      'triton',
      req,
      known === undefined
        ? UNREAD_SUPPORT
        : tritonSupport(known, {
            guidedDecoding: this.#guided ?? false,
            // Not read yet (no `properties()`): `countChatTokens` reads it, and refuses there.
            chat: chat === undefined || chat.found ? true : `no chat template: ${chat.why}`,
          }),
    );
  }

  /**
   * Streams `generate_stream`; closing the connection cancels the request in Triton. Token
   * counts come from the ensemble's `num_input_tokens` / `num_output_tokens` where it declares
   * them; otherwise the prompt is counted by the tokenizer model alongside the stream. With
   * `messages`, the prompt is the turns rendered by the model's own chat template.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const ensemble = await this.ensemble(signal);
    const prompt = await this.#prompt(req, signal);
    const body = toTritonRequest(req, ensemble, prompt);
    const parser = new TritonStreamParser(req.stop);
    const counted = ensemble.countsInput ? undefined : this.countTokens(prompt, signal);
    counted?.catch(() => undefined);
    for await (const rec of this.#http.sse(
      `/v2/models/${this.#models.ensemble}/generate_stream`,
      body,
      signal,
    )) {
      yield* parser.push(rec.data);
      // Past a stop string nothing is wanted: leaving the loop closes the stream (Triton cancels).
      if (parser.stopped) break;
    }
    const tokensIn = parser.tokensIn ?? (await (counted ?? this.countTokens(prompt, signal)));
    yield* parser.finish(tokensIn, req.maxTokens);
  }

  async close(): Promise<void> {
    await Promise.all([this.#http.close(), this.#metrics.close()]);
  }
}
