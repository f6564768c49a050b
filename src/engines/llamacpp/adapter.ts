/** llama.cpp `llama-server` adapter over its native HTTP API (SPEC §7). */
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import { EngineHttp } from '../engine-http.js';
import { OrchError } from '../../errors/orch-error.js';
import { probeHealth } from '../probe-health.js';
import { streamClosedEarly } from '../transport-error.js';
import { mapHttpError } from './map-error.js';
import { toCompletionRequest } from './map-request.js';
import { CompletionStreamParser } from './parse-stream.js';
import type { PropsResponse, SlotEraseResponse, SlotInfo, TokenizeResponse } from './wire-types.js';

export interface LlamaCppAdapterOptions {
  readonly baseUrl: string;
  /** Digest of the model file the process serves (the pool knows it; the engine does not). */
  readonly modelDigest?: string | undefined;
  /** Connections kept to the engine; at least its slot count plus control requests. */
  readonly connections?: number;
  /** llama-server's `--api-key` (LLAMA_API_KEY), sent as a bearer token on every request. */
  readonly apiKey?: string | undefined;
}

export class LlamaCppAdapter implements EngineAdapter {
  readonly engine = 'llamacpp' as const;
  readonly baseUrl: string;
  readonly #http: EngineHttp;
  readonly #modelDigest: string | undefined;
  /** Slot count from the last `properties()`, to refuse slot ids the engine would wrap around. */
  #slotsTotal: number | undefined;

  constructor(opts: LlamaCppAdapterOptions) {
    this.baseUrl = opts.baseUrl;
    this.#modelDigest = opts.modelDigest;
    this.#http = new EngineHttp({
      engine: 'llamacpp',
      baseUrl: opts.baseUrl,
      connections: opts.connections,
      headers: opts.apiKey === undefined ? {} : { authorization: `Bearer ${opts.apiKey}` },
      mapHttpError,
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
    return {
      slotsTotal: props.total_slots,
      slotsFree,
      ctx,
      model: props.model_alias ?? props.model_path ?? 'unknown',
      engineVersion: props.build_info ?? 'unknown',
      modelDigest: this.#modelDigest,
      features: { continuousBatching: false, interruptibleDecode: false, embeddings: false },
    };
  }

  async countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = await this.#http.json<TokenizeResponse>('POST', '/tokenize', signal, {
      content: text,
      add_special: true,
    });
    return r.tokens.length;
  }

  scrapeMetrics(signal: AbortSignal): Promise<string> {
    return this.#http.text('GET', '/metrics', signal);
  }

  /**
   * Streams `/completion`. Aborting `signal` destroys the HTTP request; llama-server notices the
   * closed connection and frees the slot. Never yields after the abort.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const frames = new CompletionStreamParser();
    for await (const rec of this.#http.sse('/completion', toCompletionRequest(req), signal)) {
      for (const ev of frames.push(rec.data)) {
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
