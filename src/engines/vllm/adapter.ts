/** vLLM adapter over its OpenAI-compatible server (SPEC §7). */
import type {
  EmbedResult,
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
} from '../adapter.js';
import { gauge } from '../../util/prom-text.js';
import { EngineHttp } from '../engine-http.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { mapVllmError } from './map-error.js';
import { toVllmRequest } from './map-request.js';
import { VllmStreamParser } from './parse-stream.js';
import type { EmbeddingResponse, ModelList, TokenizeResponse } from './wire-types.js';

export interface VllmAdapterOptions {
  readonly baseUrl: string;
  /** The served model name (`--served-model-name`), sent as `model` on every request. */
  readonly model: string;
  /** vLLM's `--api-key`, sent as a bearer token. */
  readonly apiKey?: string | undefined;
  /** `--max-num-seqs`: vLLM does not report its sequence limit over HTTP. */
  readonly slots: number;
  readonly modelDigest?: string | undefined;
  readonly connections?: number | undefined;
}

export class VllmAdapter implements EngineAdapter {
  readonly engine = 'vllm' as const;
  readonly baseUrl: string;
  readonly #o: VllmAdapterOptions;
  readonly #http: EngineHttp;

  constructor(opts: VllmAdapterOptions) {
    this.#o = opts;
    this.baseUrl = opts.baseUrl;
    this.#http = new EngineHttp({
      engine: 'vllm',
      baseUrl: opts.baseUrl,
      connections: opts.connections,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
      mapHttpError: mapVllmError,
    });
  }

  /** `/health`: 200 when the engine loop runs; vLLM only listens once the model is loaded. */
  probe(signal: AbortSignal): Promise<EngineHealth> {
    return probeHealth(this.#http, '/health', signal, (status) => status === 503);
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [models, version, metrics] = await Promise.all([
      this.#http.json<ModelList>('GET', '/v1/models', signal),
      this.#http.json<{ version: string }>('GET', '/version', signal),
      this.#http.text('GET', '/metrics', signal).catch(() => ''),
    ]);
    const model = models.data.find((m) => m.id === this.#o.model) ?? models.data[0];
    const running = gauge(metrics, 'vllm:num_requests_running');
    return {
      slotsTotal: this.#o.slots,
      slotsFree: running === undefined ? undefined : Math.max(0, this.#o.slots - running),
      ctx: model?.max_model_len ?? 0,
      model: model?.id ?? this.#o.model,
      engineVersion: version.version,
      modelDigest: this.#o.modelDigest,
      // Aborting a vLLM request frees its sequence at the next step, and automatic prefix caching
      // makes the resumed prompt (prompt + text so far) cheap: decode is interruptible.
      features: { continuousBatching: true, interruptibleDecode: true, embeddings: true },
    };
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, {
      model: this.#o.model,
      prompt: text,
    });
    return r.count;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#http.text('GET', '/metrics', signal);
  }

  async embed(inputs: readonly string[], signal: AbortSignal): Promise<EmbedResult> {
    const r = await this.#http.json<EmbeddingResponse>('POST', '/v1/embeddings', signal, {
      model: this.#o.model,
      input: inputs,
      encoding_format: 'float',
    });
    const vectors = [...r.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    return { vectors, tokensIn: r.usage.prompt_tokens };
  }

  /** Streams `/v1/completions`; aborting closes the connection and vLLM aborts the request. */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const parser = new VllmStreamParser();
    for await (const rec of this.#http.sse('/v1/completions', toVllmRequest(req, this.#o.model), signal)) {
      yield* parser.push(rec.data);
      if (parser.done) return;
    }
    throw streamClosedEarly('vllm');
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}
