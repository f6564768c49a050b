/** Triton Inference Server + TensorRT-LLM adapter (SPEC §7), over the KServe v2 REST API. */
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import type { ResolvedTritonModels } from '../../config/resolved-config.js';
import { EngineHttp } from '../engine-http.js';
import { probeHealth } from '../probe-health.js';
import { gauge } from '../../util/prom-text.js';
import { readEngineFacts } from './engine-facts.js';
import { ensembleInterface, type EnsembleInterface } from './ensemble-interface.js';
import { mapTritonError } from './map-error.js';
import { toTritonRequest } from './map-request.js';
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
      const read = this.#config(this.#models.ensemble, signal).then(ensembleInterface);
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
    ]);
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
   * Streams `generate_stream`; closing the connection cancels the request in Triton. Token
   * counts come from the ensemble's `num_input_tokens` / `num_output_tokens` where it declares
   * them; otherwise the prompt is counted by the tokenizer model alongside the stream.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const ensemble = await this.ensemble(signal);
    const body = toTritonRequest(req, ensemble);
    const parser = new TritonStreamParser();
    const counted = ensemble.countsInput ? undefined : this.countTokens(req.prompt, signal);
    counted?.catch(() => undefined);
    for await (const rec of this.#http.sse(
      `/v2/models/${this.#models.ensemble}/generate_stream`,
      body,
      signal,
    )) {
      yield* parser.push(rec.data);
    }
    const tokensIn = parser.tokensIn ?? (await (counted ?? this.countTokens(req.prompt, signal)));
    yield* parser.finish(tokensIn, req.maxTokens);
  }

  async close(): Promise<void> {
    await Promise.all([this.#http.close(), this.#metrics.close()]);
  }
}
