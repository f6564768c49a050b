import type {
  ChatMessage,
  ResponseFormat,
  SamplingOptions,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from '../domain/sampling.js';
import type { Determinism, Engine } from '../domain/types.js';

/** Liveness/readiness of one engine process. */
export interface EngineHealth {
  readonly live: boolean;
  readonly ready: boolean;
  /** True while the engine answers but is still loading its model. */
  readonly loading: boolean;
  readonly detail?: string;
}

export interface EngineFeatures {
  readonly continuousBatching: boolean;
  readonly interruptibleDecode: boolean;
  readonly embeddings: boolean;
  /**
   * False when the engine process only embeds (a pooling model: vLLM `--task embed`); absent
   * or true when it generates.
   */
  readonly completions?: boolean;
}

export interface EngineProps {
  readonly slotsTotal: number;
  /** Free slots as the engine reports them, when it exposes slot state. */
  readonly slotsFree: number | undefined;
  /** Context length of one slot. */
  readonly ctx: number;
  readonly model: string;
  readonly engineVersion: string;
  readonly modelDigest: string | undefined;
  readonly features: EngineFeatures;
  /** TensorRT-LLM version of a Triton engine, where the model configuration states it. */
  readonly trtllmVersion?: string | undefined;
}

/** Embedding vectors in input order, and the prompt tokens the engine counted. */
export interface EmbedResult {
  readonly vectors: readonly (readonly number[])[];
  readonly tokensIn: number;
}

/** What the engine turns into the prompt: text, or chat turns through its own chat template. */
export interface PromptInput {
  readonly prompt: string;
  /** When present, the prompt is these turns templated by the engine (`prompt` is then empty). */
  readonly messages?: readonly ChatMessage[] | undefined;
  /** Function tools offered with `messages` (they are part of the templated prompt). */
  readonly tools?: readonly ToolDefinition[] | undefined;
}

export interface GenerateRequest extends PromptInput {
  readonly maxTokens: number;
  readonly seed: number;
  readonly determinism: Determinism;
  readonly samplerProfileVersion: string;
  /** Keep the prompt's KV in the slot for the session's next turn. */
  readonly cachePrompt: boolean;
  /** Generate exactly maxTokens, ignoring end-of-sequence (benchmarks, tests). */
  readonly ignoreEos?: boolean;
  /**
   * Sampling fields the task set; absent ones take the profile's values (`samplingOf`). A field
   * that is present must be honoured or refused (`checkRequest`), never dropped.
   */
  readonly sampling?: SamplingOptions | undefined;
  /** Stop strings: generation ends before the first one, which is not part of the text. */
  readonly stop?: readonly string[] | undefined;
  readonly responseFormat?: ResponseFormat | undefined;
  readonly toolChoice?: ToolChoice | undefined;
}

/**
 * What an engine stream yields. A `tokens` event stands for `count` generated tokens whose text
 * the engine released together (e.g. a multi-byte UTF-8 sequence). `ids` holds the token ids the
 * engine reported for them, aligned to the end: engines may report fewer ids than tokens.
 */
export type EngineEvent =
  | {
      readonly kind: 'tokens';
      readonly count: number;
      readonly ids: readonly number[];
      readonly text: string;
    }
  | {
      readonly kind: 'done';
      /** Every prompt token of the request, cached or not (budgets, `tokens_in_total`, KV size). */
      readonly tokensIn: number;
      /**
       * Prompt tokens the engine computed, those its prompt cache held aside, where the engine
       * tells them apart (llama.cpp `timings.prompt_n`): the prefill cost. Absent: all of them.
       */
      readonly tokensInUncached?: number;
      readonly tokensOut: number;
      readonly stopReason: 'eos' | 'length' | 'stop' | 'tool_calls' | 'unknown';
      /** The tool calls the model made (requests with `tools`), assembled from the stream. */
      readonly toolCalls?: readonly ToolCall[];
      /** The engine slot that served the request, when the engine reports it (see `eraseKv`). */
      readonly slotId?: number;
    };

/**
 * One interface for every engine. Cancellation flows through `AbortSignal` only: aborting the
 * signal of `generate` aborts the engine request, which frees the engine slot. Engine failures are
 * thrown as `OrchError` (mapped in one place per adapter).
 */
export interface EngineAdapter {
  readonly engine: Engine;
  readonly baseUrl: string;
  probe(signal: AbortSignal): Promise<EngineHealth>;
  properties(signal: AbortSignal): Promise<EngineProps>;
  /** Number of tokens the engine's own tokenizer makes of `text` (with BOS where the model adds it). */
  countTokens(text: string, signal: AbortSignal): Promise<number>;
  /**
   * Prompt tokens of chat turns after the engine's own chat template (with the generation
   * prompt and any tools). Engines without chat support lack it: `messages` is refused there.
   */
  countChatTokens?(input: PromptInput, signal: AbortSignal): Promise<number>;
  /**
   * Throws `INVALID_PARAMS` naming the field and the engine when this engine cannot honour a
   * field of `req` (a sampling field it has no parameter for, a response format, tools, chat).
   * Pure and local: admission calls it before any engine round trip.
   */
  checkRequest(req: GenerateRequest): void;
  generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent>;
  scrapeMetrics(signal: AbortSignal): Promise<string>;
  /** Embeddings, on engines that have them (`features.embeddings`). */
  embed?(inputs: readonly string[], signal: AbortSignal): Promise<EmbedResult>;
  /**
   * KV-cache usage (0..1) read from the engine's own state, for engines whose metrics carry no
   * KV gauge (llama.cpp: its slots' cells); undefined when the engine does not tell. Engines
   * without it are read from their metrics scrape (the driver's `metrics.kvUsage`).
   */
  kvUsage?(signal: AbortSignal): Promise<number | undefined>;
  /**
   * Erases the KV cache held in engine slot `slotId` (the `slotId` of a `done` event), so a
   * deleted session's prompt no longer lives on the replica. Only engines that can erase per slot
   * implement it; on the others a session's KV is left to the engine's own cache eviction.
   * Resolves once the engine reports the slot empty; a slot still serving a request is erased
   * when that request ends.
   */
  eraseKv?(slotId: number, signal: AbortSignal): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
