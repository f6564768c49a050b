/** Hugging Face text-generation-inference adapter (SPEC §7). */
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { gauge } from '../../util/prom-text.js';
import { mapTgiError } from './map-error.js';
import { toTgiRequest } from './map-request.js';
import { TgiStreamParser } from './parse-stream.js';
import type { Info, TokenizeResponse } from './wire-types.js';

export interface TgiAdapterOptions {
  readonly baseUrl: string;
  readonly modelDigest?: string | undefined;
  readonly connections?: number | undefined;
  /** TGI's `--api-key` (API_KEY, since v2.3.0), sent as a bearer token on every request. */
  readonly apiKey?: string | undefined;
}

export class TgiAdapter implements EngineAdapter {
  readonly engine = 'tgi' as const;
  readonly baseUrl: string;
  readonly #o: TgiAdapterOptions;
  readonly #http: EngineHttp;

  constructor(opts: TgiAdapterOptions) {
    this.#o = opts;
    this.baseUrl = opts.baseUrl;
    this.#http = new EngineHttp({
      engine: 'tgi',
      baseUrl: opts.baseUrl,
      connections: opts.connections,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
      mapHttpError: mapTgiError,
    });
  }

  /** `/health`: 200 once the shards answer, 503 `unhealthy` otherwise. */
  probe(signal: AbortSignal): Promise<EngineHealth> {
    return probeHealth(this.#http, '/health', signal, (status) => status === 503);
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [info, metrics] = await Promise.all([
      this.#http.json<Info>('GET', '/info', signal),
      this.#http.text('GET', '/metrics', signal).catch(() => ''),
    ]);
    const running = gauge(metrics, 'tgi_batch_current_size');
    return {
      slotsTotal: info.max_concurrent_requests,
      slotsFree: running === undefined ? undefined : Math.max(0, info.max_concurrent_requests - running),
      ctx: info.max_total_tokens,
      model: info.model_id,
      engineVersion: info.version,
      modelDigest: this.#o.modelDigest ?? (info.model_sha === null ? undefined : `git:${info.model_sha}`),
      features: { continuousBatching: true, interruptibleDecode: false, embeddings: false },
    };
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    return (await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, { inputs: text })).length;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#http.text('GET', '/metrics', signal);
  }

  /** Streams `/generate_stream`; closing the connection makes TGI's router cancel the request. */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const parser = new TgiStreamParser();
    for await (const rec of this.#http.sse('/generate_stream', toTgiRequest(req), signal)) {
      yield* parser.push(rec.data);
      if (parser.done) return;
    }
    throw streamClosedEarly('tgi');
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}
