/** llama.cpp `llama-server` adapter over its native HTTP API (SPEC §7). */
import type {
  EmbedResult,
  EngineAdapter,
  EngineEvent,
  EngineHealth,
  EngineProps,
  GenerateRequest,
  PromptInput,
} from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { OrchError } from '../../errors/orch-error.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { mapEngineFailure, mapHttpError } from './map-error.js';
import { OpenAiChatStreamParser } from '../openai-chat-stream.js';
import { checkLlamaRequest, toChatRequest, toCompletionRequest } from './map-request.js';
import { CompletionStreamParser } from './parse-stream.js';
import type {
  ApplyTemplateRequest,
  ApplyTemplateResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  PropsResponse,
  SlotEraseResponse,
  SlotInfo,
  TokenizeResponse,
} from './wire-types.js';

export interface LlamaCppAdapterOptions {
  readonly baseUrl: string;
  /** Digest of the model file the process serves (the pool knows it; the engine does not). */
  readonly modelDigest?: string | undefined;
  /** Connections kept to the engine; at least its slot count plus control requests. */
  readonly connections?: number;
  /** llama-server's `--api-key` (LLAMA_API_KEY), sent as a bearer token on every request. */
  readonly apiKey?: string | undefined;
  /**
   * What the server's command line decided and the server does not report (`launch-flags.ts`);
   * absent: llama-server's defaults (continuous batching on, per-slot KV).
   */
  readonly continuousBatching?: boolean | undefined;
  readonly kvUnified?: boolean | undefined;
  /** `--jinja` (the default) or `--no-jinja`: tool calls need the Jinja template engine. */
  readonly jinja?: boolean | undefined;
}

/**
 * What `POST /v1/embeddings` with an empty body says about the server, before it reads any input
 * (`handle_embeddings_impl`, `tools/server/server-context.cpp`): 501 `not_supported_error`
 * without `--embeddings`; 400 "Pooling type 'none' is not OAI compatible" when the pooling (the
 * model's own unless `--pooling` says otherwise) gives no vector per input; else 400 "\"input\" or
 * \"content\" must be provided": it serves embeddings. Nothing is computed.
 */
function embeddingsFromProbe(status: number, body: string): boolean | undefined {
  if (status === 501 || status === 404) return false;
  if (status !== 400) return undefined;
  return !/pooling type 'none'/i.test(body);
}

export class LlamaCppAdapter implements EngineAdapter {
  readonly engine = 'llamacpp' as const;
  readonly baseUrl: string;
  readonly #http: EngineHttp;
  readonly #modelDigest: string | undefined;
  /** Slot count from the last `properties()`, to refuse slot ids the engine would wrap around. */
  #slotsTotal: number | undefined;
  readonly #continuousBatching: boolean;
  readonly #kvUnified: boolean;
  readonly #jinja: boolean;
  /** `chat_template_caps.supports_tool_calls` from the last `/props` (undefined before it). */
  #toolCalls: boolean | undefined;
  /** The embeddings probe's answer; a process keeps its command line, so one answer holds. */
  #embeddings: boolean | undefined;

  constructor(opts: LlamaCppAdapterOptions) {
    this.baseUrl = opts.baseUrl;
    this.#modelDigest = opts.modelDigest;
    this.#continuousBatching = opts.continuousBatching ?? true;
    this.#kvUnified = opts.kvUnified ?? false;
    this.#jinja = opts.jinja ?? true;
    this.#http = new EngineHttp({
      engine: 'llamacpp',
      baseUrl: opts.baseUrl,
      connections: opts.connections,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
      mapHttpError,
      // Builds before the pinned one frame a mid-stream error as an `error:` field.
      sseFieldEvents: ['error'],
    });
  }

  /** `/health`: 200 ready, 503 while the model loads. */
  probe(signal: AbortSignal): Promise<EngineHealth> {
    return probeHealth(this.#http, '/health', signal, (status) => status === 503);
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const props = await this.#http.json<PropsResponse>('GET', '/props', signal);
    let slotsFree: number | undefined;
    let ctx = props.default_generation_settings?.n_ctx ?? 0;
    try {
      const slots = await this.#http.json<SlotInfo[]>('GET', '/slots', signal);
      slotsFree = slots.filter((s) => !s.is_processing).length;
      ctx = slots[0]?.n_ctx ?? ctx;
    } catch (err) {
      if (signal.aborted) throw err;
      // /slots can be disabled (--no-slots); slot state is then unknown.
    }
    this.#slotsTotal = props.total_slots;
    this.#toolCalls = props.chat_template_caps?.['supports_tool_calls'] === true;
    return {
      slotsTotal: props.total_slots,
      slotsFree,
      ctx,
      model: props.model_alias ?? props.model_path ?? 'unknown',
      engineVersion: props.build_info ?? 'unknown',
      modelDigest: this.#modelDigest,
      features: {
        // `/props` does not say; the command line the server was started with does.
        continuousBatching: this.#continuousBatching,
        interruptibleDecode: false,
        embeddings: await this.#servesEmbeddings(props, signal),
      },
    };
  }

  /**
   * Asks the server whether it serves `/v1/embeddings` (see `embeddingsFromProbe`). A sleeping
   * server (`--sleep-idle-seconds`, `is_sleeping` in `/props`) is not asked: any request but the
   * health check would load the model again.
   */
  async #servesEmbeddings(props: PropsResponse, signal: AbortSignal): Promise<boolean> {
    if (this.#embeddings !== undefined || props.is_sleeping === true) return this.#embeddings ?? false;
    const r = await this.#http.raw('POST', '/v1/embeddings', signal, {});
    this.#embeddings = embeddingsFromProbe(r.status, r.text);
    return this.#embeddings ?? false;
  }

  /**
   * `POST /v1/embeddings` (the OpenAI shape; the native `/embedding` reports no token count):
   * one L2-normalized vector per input, pooled as the server was started (`--pooling`).
   */
  async embed(inputs: readonly string[], signal: AbortSignal): Promise<EmbedResult> {
    const body: EmbeddingsRequest = { input: [...inputs], encoding_format: 'float' };
    const r = await this.#http.json<EmbeddingsResponse>('POST', '/v1/embeddings', signal, body);
    const vectors = [...r.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    if (vectors.length !== inputs.length)
      throw new OrchError(
        'INTERNAL',
        `llama-server returned ${vectors.length} embeddings for ${inputs.length} inputs`,
        { engine: 'llamacpp' },
      );
    return { vectors, tokensIn: r.usage.prompt_tokens };
  }

  /**
   * KV usage from `/slots`: the pinned llama-server exports no KV gauge (its `/metrics` has
   * `llamacpp:n_tokens_max`, not the cache's fill). Each slot reports the tokens it holds
   * (`n_prompt_tokens`, the prompt and the generated text as decoding proceeds) and its cells
   * (`n_ctx`); the cache is the slots' cells together, or under `--kv-unified` one slot's `n_ctx`,
   * which is then the whole cache. Undefined when `/slots` is off (`--no-slots`). Host-memory
   * prompt-cache copies (`--cache-ram`) are not KV cells and do not count.
   */
  async kvUsage(signal: AbortSignal): Promise<number | undefined> {
    let slots: SlotInfo[];
    try {
      slots = await this.#http.json<SlotInfo[]>('GET', '/slots', signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return undefined;
    }
    const cells = this.#kvUnified
      ? Math.max(0, ...slots.map((s) => s.n_ctx))
      : slots.reduce((n, s) => n + s.n_ctx, 0);
    if (!(cells > 0)) return undefined;
    const held = slots.reduce((n, s) => n + (s.n_prompt_tokens ?? 0), 0);
    return Math.min(1, held / cells);
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, {
      content: text,
      add_special: true,
    });
    return r.tokens.length;
  }

  /** The chat turns through the model's own template, then the same tokenizer as prompts. */
  async countChatTokens(input: PromptInput, signal: AbortSignal): Promise<number> {
    return this.countTokens(await this.#applyTemplate(input, signal), signal);
  }

  checkRequest(req: GenerateRequest): void {
    checkLlamaRequest(req, this.#jinja, this.#toolCalls);
  }

  /**
   * `POST /apply-template`: the prompt llama-server's own chat endpoint would build from these
   * turns (the model's template, the generation prompt, tools), without inference.
   */
  async #applyTemplate(input: PromptInput, signal: AbortSignal): Promise<string> {
    const body: ApplyTemplateRequest = { messages: input.messages ?? [] };
    if (input.tools !== undefined) body.tools = input.tools;
    const r = await this.#http.json<ApplyTemplateResponse>('POST', '/apply-template', signal, body);
    return r.prompt;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#http.text('GET', '/metrics', signal);
  }

  /**
   * Streams `/completion`. Aborting `signal` destroys the HTTP request; llama-server notices the
   * closed connection and frees the slot. Never yields after the abort.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    if (req.tools !== undefined && req.tools.length > 0) {
      yield* this.#chat(req, signal);
      return;
    }
    const frames = new CompletionStreamParser();
    // Chat turns become the prompt llama-server's chat endpoint would build: the same `/completion`
    // path then streams them, token ids, slot and timings included.
    const prompt = req.messages === undefined ? req.prompt : await this.#applyTemplate(req, signal);
    let ended = false;
    for await (const rec of this.#http.sse(
      '/completion',
      toCompletionRequest(req, prompt),
      signal,
      () => ended,
    )) {
      if (rec.event === 'error') frames.pushErrorField(rec.data);
      for (const ev of frames.push(rec.data)) {
        ended = ev.kind === 'done';
        yield ev;
        if (ended) return;
      }
    }
    throw streamClosedEarly('llamacpp');
  }

  /** Tool calls: llama-server's chat endpoint, whose parser assembles them (`toChatRequest`). */
  async *#chat(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const chunks = new OpenAiChatStreamParser({
      engine: 'llamacpp',
      streamError: (body) => mapEngineFailure(JSON.stringify(body).slice(0, 300)),
    });
    for await (const rec of this.#http.sse(
      '/v1/chat/completions',
      toChatRequest(req),
      signal,
      () => chunks.done,
    )) {
      for (const ev of chunks.push(rec.data)) {
        yield ev;
        if (ev.kind === 'done') return;
      }
    }
    throw streamClosedEarly('llamacpp');
  }

  /**
   * `POST /slots/{id}?action=erase` drops the slot's tokens and their KV cells. llama-server only
   * serves slot actions when started with `--slot-save-path`; without it the answer is a 501. It
   * defers the erase of a busy slot until its request ends, so this resolves only then. Copies
   * its host-memory prompt cache (`--cache-ram`, on by default) took of the slot survive and are
   * loaded again for the same prefix; only `--cache-ram 0` makes the erase complete.
   */
  async eraseKv(slotId: number, signal: AbortSignal): Promise<void> {
    // llama-server maps every integer id, negative ones too, onto some slot (as unsigned, modulo
    // the slot count): refuse what is not a slot id here rather than erase a neighbour's KV.
    const total = this.#slotsTotal;
    if (!Number.isSafeInteger(slotId) || slotId < 0 || (total !== undefined && slotId >= total))
      throw new OrchError('INVALID_PARAMS', `not a llama-server slot id: ${slotId}`, {
        engine: 'llamacpp',
      });
    await this.#http.json<SlotEraseResponse>('POST', `/slots/${slotId}?action=erase`, signal);
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}
