/** llama.cpp `llama-server` adapter over its native HTTP API (SPEC §7). */
import { Pool } from 'undici';
import type { EngineAdapter, EngineEvent, EngineHealth, EngineProps, GenerateRequest } from '../adapter.js';
import { SseParser } from '../../util/sse-parser.js';
import { mapHttpError, mapTransportError } from './map-error.js';
import { toCompletionRequest } from './map-request.js';
import { CompletionStreamParser } from './parse-stream.js';
import type { PropsResponse, SlotInfo, TokenizeResponse } from './wire-types.js';

export interface LlamaCppAdapterOptions {
  readonly baseUrl: string;
  /** Digest of the model file the process serves (the pool knows it; the engine does not). */
  readonly modelDigest?: string | undefined;
  /** Connections kept to the engine; at least its slot count plus control requests. */
  readonly connections?: number;
}

export class LlamaCppAdapter implements EngineAdapter {
  readonly engine = 'llamacpp' as const;
  readonly baseUrl: string;
  readonly #pool: Pool;
  readonly #modelDigest: string | undefined;

  constructor(opts: LlamaCppAdapterOptions) {
    this.baseUrl = opts.baseUrl;
    this.#modelDigest = opts.modelDigest;
    this.#pool = new Pool(opts.baseUrl, { connections: opts.connections ?? 16, keepAliveTimeout: 30_000 });
  }

  async #json<T>(method: 'GET' | 'POST', path: string, signal: AbortSignal, body?: unknown): Promise<T> {
    let res;
    try {
      res = await this.#pool.request({
        method,
        path,
        signal,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(err);
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) throw mapHttpError(res.statusCode, text);
    return JSON.parse(text) as T;
  }

  async probe(signal: AbortSignal): Promise<EngineHealth> {
    try {
      const res = await this.#pool.request({ method: 'GET', path: '/health', signal });
      const text = await res.body.text();
      if (res.statusCode === 200) return { live: true, ready: true, loading: false };
      if (res.statusCode === 503)
        return { live: true, ready: false, loading: true, detail: text.slice(0, 200) };
      return { live: true, ready: false, loading: false, detail: `health answered ${res.statusCode}` };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return { live: false, ready: false, loading: false, detail: String((err as Error).message ?? err) };
    }
  }

  async properties(signal: AbortSignal): Promise<EngineProps> {
    const props = await this.#json<PropsResponse>('GET', '/props', signal);
    let slotsFree: number | undefined;
    let ctx = props.default_generation_settings?.n_ctx ?? 0;
    try {
      const slots = await this.#json<SlotInfo[]>('GET', '/slots', signal);
      slotsFree = slots.filter((s) => !s.is_processing).length;
      ctx = slots[0]?.n_ctx ?? ctx;
    } catch (err) {
      if (signal.aborted) throw err;
      // /slots can be disabled (--no-slots); slot state is then unknown.
    }
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
    const r = await this.#json<TokenizeResponse>('POST', '/tokenize', signal, {
      content: text,
      add_special: true,
    });
    return r.tokens.length;
  }

  async scrapeMetrics(signal: AbortSignal): Promise<string> {
    const res = await this.#pool
      .request({ method: 'GET', path: '/metrics', signal })
      .catch((err: unknown) => {
        throw mapTransportError(err);
      });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw mapHttpError(res.statusCode, text);
    return text;
  }

  /**
   * Streams `/completion`. Aborting `signal` destroys the HTTP request; llama-server notices the
   * closed connection and frees the slot. Never yields after the abort.
   */
  async *generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const body = toCompletionRequest(req);
    let res;
    try {
      res = await this.#pool.request({
        method: 'POST',
        path: '/completion',
        signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(body),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(err);
    }
    if (res.statusCode !== 200) throw mapHttpError(res.statusCode, await res.body.text());
    const parser = new SseParser();
    const frames = new CompletionStreamParser();
    let done = false;
    try {
      for await (const chunk of res.body) {
        for (const rec of parser.push(chunk as Buffer)) {
          for (const ev of frames.push(rec.data)) {
            signal.throwIfAborted();
            yield ev;
            if (ev.kind === 'done') done = true;
          }
        }
        if (done) break;
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(err);
    } finally {
      // An early exit (cancel, consumer break) must close the connection so the slot frees.
      if (!done) res.body.destroy();
    }
    if (!done) throw mapTransportError(Object.assign(new Error('stream closed'), { code: 'UND_ERR_SOCKET' }));
  }

  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
