/**
 * The HTTP plumbing every engine adapter shares: a keep-alive connection pool, JSON calls, and a
 * streaming call that yields Server-Sent Events records. Status codes other than 2xx go through
 * the adapter's own error mapper, so each engine keeps one mapping point.
 */
import { Pool, type Dispatcher } from 'undici';
import type { Engine } from '../domain/types.js';
import type { OrchError } from '../errors/orch-error.js';
import { SseParser, type SseRecord } from '../util/sse-parser.js';
import { mapTransportError } from './transport-error.js';

export interface EngineHttpOptions {
  readonly engine: Engine;
  readonly baseUrl: string;
  readonly connections?: number | undefined;
  /** Headers sent with every request (e.g. `authorization` for vLLM's `--api-key`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly mapHttpError: (status: number, body: string) => OrchError;
  /** Non-standard SSE field names the engine sends events in (see `SseParser`). */
  readonly sseFieldEvents?: readonly string[] | undefined;
}

export interface RawResponse {
  readonly status: number;
  readonly text: string;
}

type Method = 'GET' | 'POST';

export class EngineHttp {
  readonly baseUrl: string;
  readonly #o: EngineHttpOptions;
  readonly #pool: Pool;
  /**
   * Health checks have a connection of their own: behind busy streams in the shared pool, a
   * probe would wait for a free connection and read as an engine that stopped answering.
   */
  readonly #probePool: Pool;

  constructor(opts: EngineHttpOptions) {
    this.#o = opts;
    this.baseUrl = opts.baseUrl;
    this.#pool = new Pool(opts.baseUrl, { connections: opts.connections ?? 16, keepAliveTimeout: 30_000 });
    this.#probePool = new Pool(opts.baseUrl, { connections: 1, keepAliveTimeout: 30_000 });
  }

  /** A health-check GET on the dedicated connection; transport failures become `WORKER_RESET`. */
  async probe(path: string, signal: AbortSignal): Promise<RawResponse> {
    try {
      const res = await this.#probePool.request({
        method: 'GET',
        path,
        signal,
        headers: this.#headers(undefined),
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(this.#o.engine, err);
    }
  }

  #headers(body: unknown, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.#o.headers,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...extra,
    };
  }

  /**
   * Sends a request, retrying once when a kept-alive connection turns out to be closed by the
   * engine before any answer (llama-server ends keep-alive connections after a few requests):
   * nothing was processed, so a fresh connection is safe. Any other failure is the caller's.
   */
  async #request(
    opts: Dispatcher.RequestOptions & { signal: AbortSignal },
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await this.#pool.request(opts);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET') || opts.signal.aborted) throw err;
      return this.#pool.request(opts);
    }
  }

  /** Any status; transport failures become `WORKER_RESET`. */
  async raw(method: Method, path: string, signal: AbortSignal, body?: unknown): Promise<RawResponse> {
    try {
      const res = await this.#request({
        method,
        path,
        signal,
        headers: this.#headers(body),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(this.#o.engine, err);
    }
  }

  async text(method: Method, path: string, signal: AbortSignal, body?: unknown): Promise<string> {
    const r = await this.raw(method, path, signal, body);
    if (r.status < 200 || r.status > 299) throw this.#o.mapHttpError(r.status, r.text);
    return r.text;
  }

  async json<T>(method: Method, path: string, signal: AbortSignal, body?: unknown): Promise<T> {
    return JSON.parse(await this.text(method, path, signal, body)) as T;
  }

  /**
   * POSTs `body` and yields the response's SSE records. Returning early (consumer `break`,
   * abort) destroys the connection, which is how every engine learns to free the slot — unless
   * `ended` says the consumer has read the engine's own final frame: then the rest of the body
   * (the chunked terminator, at most a few bytes) is read out instead, so the connection stays
   * alive for the next request and no abort error is built for a stream that completed.
   */
  async *sse(
    path: string,
    body: unknown,
    signal: AbortSignal,
    ended?: () => boolean,
  ): AsyncGenerator<SseRecord> {
    let res;
    try {
      res = await this.#request({
        method: 'POST',
        path,
        signal,
        headers: this.#headers(body, { accept: 'text/event-stream' }),
        body: JSON.stringify(body),
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(this.#o.engine, err);
    }
    if (res.statusCode < 200 || res.statusCode > 299)
      throw this.#o.mapHttpError(res.statusCode, await res.body.text());
    const parser = new SseParser({ fieldEvents: this.#o.sseFieldEvents ?? [] });
    let finished = false;
    try {
      // Not destroyed on return: the finally below decides between reading out and aborting.
      for await (const chunk of res.body.iterator({ destroyOnReturn: false })) {
        for (const rec of parser.push(chunk as Buffer)) {
          signal.throwIfAborted();
          yield rec;
        }
      }
      finished = true;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw mapTransportError(this.#o.engine, err);
    } finally {
      if (!finished) {
        if (!signal.aborted && ended?.() === true)
          // Bounded by the task's signal and the pool's body timeout if an engine never ends it.
          res.body.dump({ limit: Number.MAX_SAFE_INTEGER, signal }).catch(() => undefined);
        else {
          // The iterator no longer listens once it returned: without a listener, the abort error
          // undici emits on destroy would be an uncaught exception.
          res.body.once('error', () => undefined);
          res.body.destroy();
        }
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.destroy(), this.#probePool.destroy()]);
  }
}
