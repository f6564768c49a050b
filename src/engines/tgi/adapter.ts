/** Hugging Face text-generation-inference adapter (SPEC §7), for TGI v1.4.0 to v3.x. */
import type {
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
  PromptInput,
} from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { OpenAiChatStreamParser } from '../openai-chat-stream.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { OrchError } from '../../errors/orch-error.js';
import { gauge } from '../../util/prom-text.js';
import { releasedBefore } from '../../util/release-version.js';
import { mapTgiError, tgiFailure } from './map-error.js';
import { toTgiChatRequest, toTgiRequest } from './map-request.js';
import { TgiStreamParser } from './parse-stream.js';
import { StopTrim } from './stop-trim.js';
import { CURRENT_TGI, checkTgiRequest, tgiCapabilities, type TgiCapabilities } from './support.js';
import type {
  ChatRequest,
  ChatTokenizeResponse,
  ErrorResponse,
  Info,
  TokenizeResponse,
} from './wire-types.js';

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
  readonly caps: TgiCapabilities;
}

export class TgiAdapter implements EngineAdapter {
  readonly engine = 'tgi' as const;
  readonly baseUrl: string;
  readonly #o: TgiAdapterOptions;
  readonly #http: EngineHttp;
  /** `/info` of this engine process, asked once: it describes the launch, which does not change. */
  #release: Promise<TgiRelease> | undefined;
  /** What the release honours, once `/info` answered (`checkRequest` is synchronous). */
  #caps: TgiCapabilities | undefined;

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
      this.#caps = tgiCapabilities(info);
      return { info, streamsInputLength: !releasedBefore(info.version, [2, 3, 0]), caps: this.#caps };
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
   * What this TGI honours of a request (`support.ts`). Until `/info` has answered, the current
   * release's set is assumed; `generate` checks again against the release itself, so an older
   * TGI is never sent a field it lacks.
   */
  checkRequest(req: GenerateRequest): void {
    checkTgiRequest(req, this.#caps ?? CURRENT_TGI);
  }

  /**
   * `POST /chat_tokenize` (v2.3.0 and later): TGI templates the turns (and tools) exactly as its
   * Messages API does and answers the tokens; the prompt is those tokens.
   */
  async countChatTokens(input: PromptInput, signal: AbortSignal): Promise<number> {
    const { caps } = await this.#releaseOf(signal);
    checkTgiRequest({ ...chatProbe, messages: input.messages ?? [] }, caps);
    const body: Pick<ChatRequest, 'model' | 'messages' | 'tools'> = {
      model: 'tgi',
      messages: input.messages ?? [],
      ...(input.tools === undefined || input.tools.length === 0 ? {} : { tools: input.tools }),
    };
    const res = await this.#http.json<ChatTokenizeResponse>('POST', '/chat_tokenize', signal, body);
    return res.tokenize_response.length;
  }

  /**
   * Plain prompts stream `/generate_stream`; closing the connection makes TGI's router cancel the
   * request. Releases before v2.3.0 do not say how many prompt tokens they read: `/tokenize` (the
   * same encoding TGI's validation counts) runs alongside the stream and gives them. Chat turns
   * stream the Messages API (`#generateChat`).
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const release = await this.#releaseOf(signal);
    checkTgiRequest(req, release.caps);
    if (req.messages !== undefined) {
      yield* this.#generateChat(req, signal);
      return;
    }
    const counted = release.streamsInputLength ? undefined : this.countTokens(req.prompt, signal);
    // Not awaited until the end; a failure then surfaces there, not as an unhandled rejection.
    counted?.catch(() => undefined);
    const parser = new TgiStreamParser();
    const trim = new StopTrim(req.stop);
    for await (const rec of this.#http.sse(
      '/generate_stream',
      toTgiRequest(req),
      signal,
      () => parser.done,
    )) {
      for (const ev of parser.push(rec.data)) {
        const full =
          ev.kind === 'done' && !parser.inputLengthReported
            ? { ...ev, tokensIn: await (counted ?? this.countTokens(req.prompt, signal)) }
            : ev;
        yield* trim.push(full);
      }
      if (parser.done) return;
    }
    throw streamClosedEarly('tgi');
  }

  /**
   * The Messages API stream: OpenAI chunks, TGI's `finish_reason`s (`stop`, `length`,
   * `stop_sequence`) and a usage chunk (asked for with `stream_options`). A tool call streams as
   * `tool_calls` deltas and TGI's grammar then ends it with end-of-sequence, whose token is
   * swallowed with the call's closing brace (`router/src/chat.rs` `ChatState::push`), so such a
   * stream can end with no `finish_reason`: assembled tool calls make it `tool_calls`.
   */
  async *#generateChat(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const parser = new OpenAiChatStreamParser({ engine: 'tgi', streamError: chatStreamError });
    const trim = new StopTrim(req.stop);
    for await (const rec of this.#http.sse(
      '/v1/chat/completions',
      toTgiChatRequest(req),
      signal,
      () => parser.done,
    )) {
      for (const ev of parser.push(rec.data)) {
        const full =
          ev.kind === 'done' && ev.toolCalls !== undefined && ev.toolCalls.length > 0
            ? { ...ev, stopReason: 'tool_calls' as const }
            : ev;
        yield* trim.push(full);
      }
      if (parser.done) return;
    }
    throw streamClosedEarly('tgi');
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}

/** A chat request with nothing but turns: what `countChatTokens` needs the release to take. */
const chatProbe: GenerateRequest = {
  prompt: '',
  maxTokens: 1,
  seed: 0,
  determinism: 'best_effort',
  samplerProfileVersion: 'v1',
  cachePrompt: true,
};

/**
 * A Messages API error event: `{"error": "...", "error_type": "..."}` before v3.0.0,
 * `{"error": {"message", "http_status_code"}}` since (`InferError::into_openai_event`).
 */
function chatStreamError(body: unknown): OrchError {
  const b = (body ?? {}) as { error?: unknown; error_type?: unknown };
  if (typeof b.error === 'string')
    return tgiFailure({
      error: b.error,
      ...(typeof b.error_type === 'string' ? { error_type: b.error_type } : {}),
    });
  const inner = (b.error ?? {}) as { message?: unknown; http_status_code?: unknown };
  const status = typeof inner.http_status_code === 'number' ? inner.http_status_code : undefined;
  const failure: Partial<ErrorResponse> = {
    error: typeof inner.message === 'string' ? inner.message : 'unknown error',
  };
  return tgiFailure(failure, status === 422 ? undefined : status);
}
