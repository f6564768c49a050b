/** A small typed client of the OrchQueue v1 data plane (used by `llorch submit`). */
import { SseParser } from '../util/sse-parser.js';

export interface OrchClientOptions {
  readonly baseUrl: string;
  readonly apiKey?: string | undefined;
  readonly correlationId?: string | undefined;
}

/** A non-2xx answer, with the error envelope when the server sent one. */
export class OrchHttpError extends Error {
  readonly status: number;
  readonly envelope: { code: string; message: string; [k: string]: unknown } | undefined;
  constructor(status: number, envelope: OrchHttpError['envelope']) {
    super(envelope ? `${status} ${envelope.code}: ${envelope.message}` : `HTTP ${status}`);
    this.name = 'OrchHttpError';
    this.status = status;
    this.envelope = envelope;
  }
}

export interface StreamEvent {
  readonly event: string;
  readonly id: number | undefined;
  readonly data: Record<string, unknown>;
}

export class OrchClient {
  readonly #o: OrchClientOptions;

  constructor(opts: OrchClientOptions) {
    this.#o = { ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, '') };
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.#o.apiKey !== undefined) h['authorization'] = `Bearer ${this.#o.apiKey}`;
    if (this.#o.correlationId !== undefined) h['x-correlation-id'] = this.#o.correlationId;
    return h;
  }

  async #json(res: Response): Promise<unknown> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) throw new OrchHttpError(res.status, body as OrchHttpError['envelope']);
    return body;
  }

  async enqueue(body: Record<string, unknown>): Promise<{
    task_id: string;
    queue_position: number;
    predicted_start_ms: number;
    backoff_ms: number;
  }> {
    const res = await fetch(`${this.#o.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: this.#headers({ 'content-type': 'application/json' }),
      body: JSON.stringify(body),
    });
    return (await this.#json(res)) as Awaited<ReturnType<OrchClient['enqueue']>>;
  }

  async #control(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.#o.baseUrl}${path}`, {
      method,
      headers: this.#headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return this.#json(res);
  }

  /** `GET /v1/pools/{id}/health` (control scope). */
  poolHealth(poolId: string): Promise<Record<string, unknown>> {
    return this.#control('GET', `/v1/pools/${encodeURIComponent(poolId)}/health`) as Promise<
      Record<string, unknown>
    >;
  }

  /** `POST /v1/pools/{id}/drain`. */
  drainPool(poolId: string, deadlineMs: number): Promise<Record<string, unknown>> {
    return this.#control('POST', `/v1/pools/${encodeURIComponent(poolId)}/drain`, {
      deadline_ms: deadlineMs,
    }) as Promise<Record<string, unknown>>;
  }

  /** `POST /v1/pools/{id}/reload`: a new model, or `{ rollback: true }`. */
  reloadPool(
    poolId: string,
    target: { new_model_ref: string } | { rollback: true },
    deadlineMs?: number,
  ): Promise<Record<string, unknown>> {
    const body = deadlineMs === undefined ? target : { ...target, deadline_ms: deadlineMs };
    return this.#control('POST', `/v1/pools/${encodeURIComponent(poolId)}/reload`, body) as Promise<
      Record<string, unknown>
    >;
  }

  /** `GET /v1/replicasets`. */
  replicaSets(): Promise<{ replica_sets: Record<string, unknown>[] }> {
    return this.#control('GET', '/v1/replicasets') as Promise<{ replica_sets: Record<string, unknown>[] }>;
  }

  async cancel(taskId: string): Promise<void> {
    const res = await fetch(`${this.#o.baseUrl}/v1/tasks/${encodeURIComponent(taskId)}/cancel`, {
      method: 'POST',
      headers: this.#headers(),
    });
    await this.#json(res);
  }

  /** The task's SSE stream as typed events; ends after `end` or `error`. */
  async *stream(
    taskId: string,
    opts: { lastEventId?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<StreamEvent> {
    const headers = this.#headers({ accept: 'text/event-stream' });
    if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
    const res = await fetch(`${this.#o.baseUrl}/v1/tasks/${encodeURIComponent(taskId)}/stream`, {
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!res.ok || !res.body) {
      await this.#json(res);
      return;
    }
    const parser = new SseParser();
    for await (const chunk of res.body) {
      for (const rec of parser.push(chunk as Uint8Array)) {
        const ev: StreamEvent = {
          event: rec.event ?? 'message',
          id: rec.id === undefined ? undefined : Number(rec.id),
          data: JSON.parse(rec.data) as Record<string, unknown>,
        };
        yield ev;
        if (ev.event === 'end' || ev.event === 'error') return;
      }
    }
  }
}
