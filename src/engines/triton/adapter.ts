/** Triton Inference Server + TensorRT-LLM adapter (SPEC §7), over the KServe v2 REST API. */
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { probeHealth } from '../probe-health.js';
import { gauge } from '../../util/prom-text.js';
import { mapTritonError } from './map-error.js';
import { toTritonRequest } from './map-request.js';
import { TritonStreamParser } from './parse-stream.js';
import type { InferResponse, ModelConfig, ServerMetadata } from './wire-types.js';

export interface TritonAdapterOptions {
  readonly baseUrl: string;
  /** Triton serves Prometheus metrics on its own port (`--metrics-port`, 8002 by default). */
  readonly metricsUrl: string;
  /** The model to generate with (`ensemble` in TRT-LLM's model repository layout). */
  readonly model?: string | undefined;
  /** The tokenizer model used to count prompt tokens (`preprocessing` in TRT-LLM's layout). */
  readonly tokenizerModel?: string | undefined;
  /** Context length when the model configuration does not state `max_seq_len`. */
  readonly ctx?: number | undefined;
  readonly modelDigest?: string | undefined;
  readonly connections?: number | undefined;
  /**
   * Triton takes no API key; on a pool-managerd node a guard in front of it does, and this key,
   * sent as a bearer token, is that guard's (`src/nodes/engine-guard.ts`).
   */
  readonly apiKey?: string | undefined;
}

export class TritonAdapter implements EngineAdapter {
  readonly engine = 'triton' as const;
  readonly baseUrl: string;
  readonly metricsUrl: string;
  readonly #o: TritonAdapterOptions;
  readonly #http: EngineHttp;
  readonly #metrics: EngineHttp;
  readonly #model: string;

  constructor(opts: TritonAdapterOptions) {
    this.#o = opts;
    this.baseUrl = opts.baseUrl;
    this.metricsUrl = opts.metricsUrl;
    this.#model = opts.model ?? 'ensemble';
    const common = {
      engine: 'triton' as const,
      mapHttpError: mapTritonError,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
    };
    this.#http = new EngineHttp({ ...common, baseUrl: opts.baseUrl, connections: opts.connections });
    this.#metrics = new EngineHttp({ ...common, baseUrl: opts.metricsUrl, connections: 2 });
  }

  /** Server readiness, then the model's own readiness (`/v2/models/{m}/ready`). */
  async probe(signal: AbortSignal): Promise<EngineHealth> {
    const server = await probeHealth(this.#http, '/v2/health/ready', signal, () => false);
    if (!server.ready) return server.live ? { ...server, loading: true } : server;
    const model = await probeHealth(this.#http, `/v2/models/${this.#model}/ready`, signal, () => true);
    return model.ready ? model : { ...model, detail: `model '${this.#model}' is not ready` };
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [server, config, metrics] = await Promise.all([
      this.#http.json<ServerMetadata>('GET', '/v2', signal),
      this.#http.json<ModelConfig>('GET', `/v2/models/${this.#model}/config`, signal),
      this.scrapeMetrics(signal).catch(() => ''),
    ]);
    const param = (k: string) => config.parameters?.[k]?.string_value;
    const trtllm = param('trtllm_version');
    const slots = config.max_batch_size ?? 1;
    const active = gauge(metrics, 'nv_trt_llm_request_metrics', 'request_type="active"');
    const maxSeq = Number(param('max_seq_len'));
    return {
      slotsTotal: slots,
      slotsFree: active === undefined ? undefined : Math.max(0, slots - active),
      ctx: Number.isFinite(maxSeq) && maxSeq > 0 ? maxSeq : (this.#o.ctx ?? 0),
      model: config.name,
      // The replica-set identity covers both: Triton's server version and the TRT-LLM build.
      engineVersion: trtllm === undefined ? server.version : `${server.version}+trtllm-${trtllm}`,
      modelDigest: this.#o.modelDigest,
      features: { continuousBatching: true, interruptibleDecode: false, embeddings: false },
      ...(trtllm === undefined ? {} : { trtllmVersion: trtllm }),
    };
  }

  /** Through the tokenizer model's `infer` (KServe v2), which returns the token ids. */
  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<InferResponse>(
      'POST',
      `/v2/models/${this.#o.tokenizerModel ?? 'preprocessing'}/infer`,
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

  /** Streams `generate_stream`; closing the connection cancels the request in Triton. */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const parser = new TritonStreamParser();
    const tokensIn = this.countTokens(req.prompt, signal);
    tokensIn.catch(() => undefined);
    for await (const rec of this.#http.sse(
      `/v2/models/${this.#model}/generate_stream`,
      toTritonRequest(req),
      signal,
    )) {
      yield* parser.push(rec.data);
    }
    yield parser.finish(await tokensIn, req.maxTokens);
  }

  async close(): Promise<void> {
    await Promise.all([this.#http.close(), this.#metrics.close()]);
  }
}
