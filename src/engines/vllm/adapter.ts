/** vLLM adapter over its OpenAI-compatible server (SPEC §7). */
import type {
  EmbedResult,
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
  PromptInput,
} from '../adapter.js';
import { gauge } from '../../util/prom-text.js';
import { EngineHttp } from '../engine-http.js';
import { OpenAiChatStreamParser } from '../openai-chat-stream.js';
import { ALL_SAMPLING, checkSupport } from '../request-support.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import type { VllmToolCalling } from './launch-args.js';
import { mapVllmError, vllmStreamFailure } from './map-error.js';
import { toVllmChatRequest, toVllmRequest } from './map-request.js';
import { VllmStreamParser } from './parse-stream.js';
import type { EmbeddingResponse, ModelList, TokenizeChatRequest, TokenizeResponse } from './wire-types.js';

/**
 * vLLM's info gauge of its cache configuration (`vllm:cache_config_info`, every `CacheConfig`
 * field a label; `vllm/engine/metrics.py` in v0.6, `vllm/v1/metrics/loggers.py` since).
 */
const PREFIX_CACHING = /^vllm:cache_config_info\{[^}]*\benable_prefix_caching="(\w+)"/m;

/** Whether the served model embeds: a 200 whose body is an embedding list (see `servesEmbeddings`). */
function isEmbeddingList(status: number, text: string): boolean {
  if (status !== 200) return false;
  try {
    return Array.isArray((JSON.parse(text) as { data?: unknown }).data);
  } catch {
    return false;
  }
}

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
  /** Tool calling as the engine's command line enables it (`vllmToolCalling`); absent: none. */
  readonly toolCalling?: VllmToolCalling | undefined;
  /** The command line makes this a pooling (embedding-only) process (`vllmPoolingByArgs`). */
  readonly pooling?: boolean | undefined;
}

/**
 * Why vLLM would refuse `tools` with this `tool_choice`, or undefined when it serves them
 * (`chat_completion/serving.py`, IBM/vllm `3302dc7f9c09`): any choice but "none" needs a
 * `--tool-call-parser`, and "auto" (the default once `tools` are given) also
 * `--enable-auto-tool-choice`.
 */
function toolsRefusal(
  choice: GenerateRequest['toolChoice'],
  tc: VllmToolCalling | undefined,
): string | undefined {
  if (choice === 'none') return undefined;
  const auto = choice === undefined || choice === 'auto';
  const missing = [
    ...(auto && tc?.autoToolChoice !== true ? ['--enable-auto-tool-choice'] : []),
    ...(tc?.parser === undefined ? ['--tool-call-parser'] : []),
  ];
  if (missing.length === 0) return undefined;
  const what = auto ? 'tool_choice "auto"' : 'a required or named tool_choice';
  return `${what} needs vLLM started with ${missing.join(' and ')} (launch.extra_args)`;
}

export class VllmAdapter implements EngineAdapter {
  readonly engine = 'vllm' as const;
  readonly baseUrl: string;
  readonly #o: VllmAdapterOptions;
  readonly #http: EngineHttp;
  /** Whether this engine process serves embeddings: asked once, the task is fixed at launch. */
  #embeds: Promise<boolean> | undefined;
  /** The answer of `#embeds` once known (`checkRequest` is synchronous). */
  #embedsKnown: boolean | undefined;

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

  /**
   * `/health`: 200 while the engine runs, 503 once its engine core died
   * (`serve/instrumentator/health.py`). vLLM never answers "loading": it listens only once the
   * model is loaded, so until then the probe finds nothing (not live) and preloading waits.
   */
  probe(signal: AbortSignal): Promise<EngineHealth> {
    return probeHealth(this.#http, '/health', signal, () => false);
  }

  /**
   * Whether the served model embeds. vLLM serves one task per process (`--task embed`, later
   * `--runner pooling`; the default for an embedding architecture), and no endpoint lists it: a
   * one-token `/v1/embeddings` call says. A generating model answers with an error body ("The
   * model does not support Embeddings API": 400 before v0.10.1, 200 since, the route returning
   * the ErrorResponse object), a pooling model with the list.
   */
  #servesEmbeddings(signal: AbortSignal): Promise<boolean> {
    this.#embeds ??= this.#http
      .raw('POST', '/v1/embeddings', signal, {
        model: this.#o.model,
        input: ['ok'],
        encoding_format: 'float',
      })
      .then((r) => (this.#embedsKnown = isEmbeddingList(r.status, r.text)));
    // A transport failure is no answer: ask again next time.
    this.#embeds.catch(() => (this.#embeds = undefined));
    return this.#embeds;
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const [models, version, metrics, embeddings] = await Promise.all([
      this.#http.json<ModelList>('GET', '/v1/models', signal),
      this.#http.json<{ version: string }>('GET', '/version', signal),
      this.#http.text('GET', '/metrics', signal).catch(() => ''),
      this.#servesEmbeddings(signal),
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
      features: {
        // Continuous batching is how vLLM schedules, whatever its flags.
        continuousBatching: true,
        // Aborting a vLLM request frees its sequence at the next step; with prefix caching on the
        // resumed prompt (prompt + text so far) costs little, so a preempted decode can resume.
        // Without it (or where the engine does not say) resuming recomputes everything: not claimed.
        interruptibleDecode: PREFIX_CACHING.exec(metrics)?.[1] === 'True',
        embeddings,
        // One task per process: a pooling model does not generate.
        completions: !embeddings,
      },
    };
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, {
      model: this.#o.model,
      prompt: text,
    });
    return r.count;
  }

  /** `/tokenize` with the turns (`TokenizeChatRequest`): the prompt the chat route will template. */
  async countChatTokens(input: PromptInput, signal: AbortSignal): Promise<number> {
    const body: TokenizeChatRequest = {
      model: this.#o.model,
      messages: input.messages ?? [],
      add_generation_prompt: true,
    };
    if (input.tools !== undefined && input.tools.length > 0) body.tools = input.tools;
    const r = await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, body);
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

  /**
   * Every sampling field, stop strings and both JSON response formats (structured outputs) on
   * any generating vLLM; chat turns unless the process only embeds; tools as its command line
   * allows them (`toolsRefusal`).
   */
  checkRequest(req: GenerateRequest): void {
    const pooling = this.#o.pooling === true || this.#embedsKnown === true;
    checkSupport('vllm', req, {
      sampling: ALL_SAMPLING,
      stop: true,
      responseFormat: new Set(['json_object', 'json_schema'] as const),
      messages: pooling ? 'this vLLM serves a pooling (embedding) model, which has no chat' : true,
      tools: toolsRefusal(req.toolChoice, this.#o.toolCalling) ?? true,
    });
  }

  /**
   * Streams `/v1/completions`, or `/v1/chat/completions` for chat turns; aborting closes the
   * connection and vLLM aborts the request.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    if (req.messages !== undefined) {
      yield* this.#chat(req, signal);
      return;
    }
    const parser = new VllmStreamParser();
    for await (const rec of this.#http.sse(
      '/v1/completions',
      toVllmRequest(req, this.#o.model),
      signal,
      () => parser.done,
    )) {
      yield* parser.push(rec.data);
      if (parser.done) return;
    }
    throw streamClosedEarly('vllm');
  }

  async *#chat(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const parser = new OpenAiChatStreamParser({ engine: 'vllm', streamError: vllmStreamFailure });
    for await (const rec of this.#http.sse(
      '/v1/chat/completions',
      toVllmChatRequest(req, this.#o.model),
      signal,
      () => parser.done,
    )) {
      yield* parser.push(rec.data);
      if (parser.done) return;
    }
    throw streamClosedEarly('vllm');
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}
