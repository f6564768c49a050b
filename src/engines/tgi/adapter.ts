/** Hugging Face text-generation-inference adapter (SPEC §7), for TGI v1.4.0 to v3.x. */
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { OrchError } from '../../errors/orch-error.js';
import { gauge } from '../../util/prom-text.js';
import { releasedBefore } from '../../util/release-version.js';
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

/** What the adapter needs to know of the engine's release, from `/info` `version`. */
interface TgiRelease {
  readonly info: Info;
  /** Stream `details` carry `input_length` (v2.3.0 and later). */
  readonly streamsInputLength: boolean;
}

export class TgiAdapter implements EngineAdapter {
  readonly engine = 'tgi' as const;
  readonly baseUrl: string;
  readonly #o: TgiAdapterOptions;
  readonly #http: EngineHttp;
  /** `/info` of this engine process, asked once: it describes the launch, which does not change. */
  #release: Promise<TgiRelease> | undefined;

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

  /**
   * `/health`: 200 once the shards answer, 503 `{"error":"unhealthy"}` when a shard fails its
   * health check — a failure, not loading: TGI's router starts (listens) only after the shards
   * loaded, so a TGI still loading refuses connections and reads as not live.
   */
  probe(signal: AbortSignal): Promise<EngineHealth> {
    return probeHealth(this.#http, '/health', signal, () => false);
  }

  /**
   * The engine's release from `/info`. Below v1.4.0 TGI has no `/tokenize`, which prompt
   * accounting needs (admission, and prompt tokens on releases before v2.3.0): refused.
   */
  #releaseOf(signal: AbortSignal): Promise<TgiRelease> {
    this.#release ??= this.#http.json<Info>('GET', '/info', signal).then((info) => {
      if (releasedBefore(info.version, [1, 4, 0]))
        throw new OrchError(
          'INTERNAL',
          `TGI ${info.version} is older than v1.4.0, the first release with /tokenize; llama-orch needs v1.4.0 or later`,
          { engine: 'tgi' },
        );
      return { info, streamsInputLength: !releasedBefore(info.version, [2, 3, 0]) };
    });
    this.#release.catch(() => (this.#release = undefined));
    return this.#release;
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [{ info }, metrics] = await Promise.all([
      this.#releaseOf(signal),
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
      // TGI batches continuously by design, serves no embeddings (that is text-embeddings-
      // inference), and has no way to resume a stopped decode cheaply (no prefix cache to lean on).
      features: { continuousBatching: true, interruptibleDecode: false, embeddings: false },
    };
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    await this.#releaseOf(signal);
    return (await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, { inputs: text })).length;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#http.text('GET', '/metrics', signal);
  }

  /**
   * Streams `/generate_stream`; closing the connection makes TGI's router cancel the request.
   * Releases before v2.3.0 do not say how many prompt tokens they read: `/tokenize` (the same
   * encoding TGI's validation counts) runs alongside the stream and gives them.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const release = await this.#releaseOf(signal);
    const counted = release.streamsInputLength ? undefined : this.countTokens(req.prompt, signal);
    // Not awaited until the end; a failure then surfaces there, not as an unhandled rejection.
    counted?.catch(() => undefined);
    const parser = new TgiStreamParser();
    for await (const rec of this.#http.sse('/generate_stream', toTgiRequest(req), signal)) {
      for (const ev of parser.push(rec.data)) {
        if (ev.kind === 'done' && !parser.inputLengthReported)
          yield { ...ev, tokensIn: await (counted ?? this.countTokens(req.prompt, signal)) };
        else yield ev;
      }
      if (parser.done) return;
    }
    throw streamClosedEarly('tgi');
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}
