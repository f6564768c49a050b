/**
 * The typed client of both OrchQueue v1 planes (SPEC §2, §6): every operation of the OpenAPI
 * documents, correlation ids on every call, retries that honour the server's backoff, and task
 * streams that reconnect with `Last-Event-ID`. `llorch` sends everything through it.
 */
import { randomUUID } from 'node:crypto';
import { fetch, type Dispatcher, type Response } from 'undici';
import { OrchHttpError } from './orch-http-error.js';
import {
  fallbackDelayMs,
  resolveRetry,
  serverBackoffMs,
  sleep,
  type ResolvedRetry,
  type RetryOptions,
} from './retry-policy.js';
import type { CallOptions } from './call-options.js';
import { streamTaskEvents, type StreamOptions } from './task-stream.js';

export type { CallOptions } from './call-options.js';
import type * as T from './types.js';

export interface OrchClientOptions {
  /** Where the orchestrator listens, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer …`. */
  readonly apiKey?: string | undefined;
  /** A fixed `X-Correlation-Id` for every call; otherwise each call gets a fresh one. */
  readonly correlationId?: string | undefined;
  /** Retries of retriable answers; `{ maxAttempts: 1 }` turns them off. */
  readonly retry?: RetryOptions | undefined;
  /** Per-attempt time limit in ms (default none; streams are never limited). */
  readonly timeoutMs?: number | undefined;
  /** Called before each retry, e.g. to log or to feed a concurrency limiter. */
  readonly onRetry?: ((info: RetryInfo) => void) | undefined;
  /** The undici dispatcher for every call (connection pool, proxy); default: Node's global one. */
  readonly dispatcher?: Dispatcher | undefined;
}

export interface RetryInfo {
  readonly method: string;
  readonly path: string;
  readonly attempt: number;
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly delayMs: number;
}

/** Options of one call. */
interface Request {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** Safe to resend after a network failure (the server may have acted on the first try). */
  readonly idempotent: boolean;
}

/** A response whose status was 2xx; the body is still unread. */
export interface OkResponse {
  readonly res: Response;
  readonly correlationId: string;
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export class OrchClient {
  readonly #o: OrchClientOptions;
  readonly #retry: ResolvedRetry;

  constructor(opts: OrchClientOptions) {
    this.#o = { ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, '') };
    this.#retry = resolveRetry(opts.retry);
  }

  get baseUrl(): string {
    return this.#o.baseUrl;
  }

  /**
   * Sends one request, retrying answers the server marks retriable (and network failures of
   * idempotent requests) after the backoff it asked for, within the retry budget.
   */
  async send(req: Request, call: CallOptions = {}): Promise<OkResponse> {
    const policy = call.retry ? resolveRetry(call.retry) : this.#retry;
    const correlationId = call.correlationId ?? this.#o.correlationId ?? randomUUID();
    const headers: Record<string, string> = { 'x-correlation-id': correlationId, ...req.headers };
    if (this.#o.apiKey !== undefined) headers['authorization'] = `Bearer ${this.#o.apiKey}`;
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      const signals = [call.signal, this.#o.timeoutMs ? AbortSignal.timeout(this.#o.timeoutMs) : undefined];
      const active = signals.filter((s): s is AbortSignal => s !== undefined);
      let res: Response;
      try {
        res = await fetch(`${this.#o.baseUrl}${req.path}`, {
          method: req.method,
          headers,
          ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
          ...(this.#o.dispatcher === undefined ? {} : { dispatcher: this.#o.dispatcher }),
          ...(active.length === 0
            ? {}
            : { signal: active.length === 1 ? active[0] : AbortSignal.any(active) }),
        });
      } catch (err) {
        if (call.signal?.aborted) throw err;
        const code = (err as { cause?: { code?: string } }).cause?.code;
        const retriable = req.idempotent || (code !== undefined && NEVER_SENT.has(code));
        const delay = fallbackDelayMs(policy, attempt);
        if (!retriable || attempt >= policy.maxAttempts || waited + delay > policy.budgetMs) throw err;
        this.#o.onRetry?.({ ...req, attempt, status: undefined, code, delayMs: delay });
        waited += delay;
        await sleep(delay, call.signal);
        continue;
      }
      if (res.ok) return { res, correlationId: res.headers.get('x-correlation-id') ?? correlationId };
      const envelope = await readEnvelope(res);
      const error = new OrchHttpError(
        res.status,
        envelope,
        res.headers.get('x-correlation-id') ?? correlationId,
        attempt,
      );
      // Only what the server calls retriable is retried (SPEC §2.5): a 400 or 422 never is.
      if (!error.retriable || attempt >= policy.maxAttempts) throw error;
      const delay = serverBackoffMs(res.headers, envelope) ?? fallbackDelayMs(policy, attempt);
      if (waited + delay > policy.budgetMs) throw error;
      this.#o.onRetry?.({ ...req, attempt, status: res.status, code: error.code, delayMs: delay });
      waited += delay;
      await sleep(delay, call.signal);
    }
  }

  async #json<R>(req: Request, call?: CallOptions): Promise<R> {
    const { res } = await this.send(req, call);
    return (await res.json()) as R;
  }

  async #empty(req: Request, call?: CallOptions): Promise<void> {
    const { res } = await this.send(req, call);
    await res.body?.cancel();
  }

  // ---- data plane -------------------------------------------------------------------------

  /** `POST /v1/tasks`: admission; 202 with queue position and predicted start. */
  async enqueue(task: T.TaskRequest, call?: CallOptions): Promise<T.Accepted & { budget?: Budget }> {
    const { res } = await this.send(
      { method: 'POST', path: '/v1/tasks', body: task, idempotent: false },
      call,
    );
    const accepted = (await res.json()) as T.Accepted;
    const budget = budgetHeaders(res.headers);
    return budget ? { ...accepted, budget } : accepted;
  }

  /**
   * `GET /v1/tasks/{id}/stream` as an async iterator of typed events. A dropped connection is
   * resumed with `Last-Event-ID`: no event is lost or repeated. Abort with `opts.signal`.
   */
  streamTask(taskId: string, opts: StreamOptions = {}): AsyncGenerator<T.TaskEvent, void, undefined> {
    return streamTaskEvents(this, taskId, opts);
  }

  /**
   * Enqueues and streams in one go. Aborting `opts.signal` cancels the task on the server
   * (`POST …/cancel`) and then ends the iteration with the abort reason.
   */
  async *run(task: T.TaskRequest, opts: StreamOptions = {}): AsyncGenerator<T.TaskEvent, void, undefined> {
    await this.enqueue(task, opts);
    try {
      yield* this.streamTask(task.task_id, opts);
    } finally {
      if (opts.signal?.aborted) await this.cancel(task.task_id).catch(() => undefined);
    }
  }

  /** `GET /v1/tasks?state=&pool=&limit=`: live and recently ended tasks the key may see. */
  listTasks(query: T.TaskListQuery = {}, call?: CallOptions): Promise<T.TaskList> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const path = `/v1/tasks${qs.size > 0 ? `?${qs.toString()}` : ''}`;
    return this.#json({ method: 'GET', path, idempotent: true }, call);
  }

  /** `POST /v1/tasks/{id}/cancel` (204; idempotent). */
  cancel(taskId: string, call?: CallOptions): Promise<void> {
    return this.#empty({ method: 'POST', path: `/v1/tasks/${enc(taskId)}/cancel`, idempotent: true }, call);
  }

  /** `GET /v1/sessions`: the key's tenant's live sessions, most recently used first. */
  listSessions(query: T.SessionListQuery = {}, call?: CallOptions): Promise<T.SessionList> {
    const path = query.limit === undefined ? '/v1/sessions' : `/v1/sessions?limit=${query.limit}`;
    return this.#json({ method: 'GET', path, idempotent: true }, call);
  }

  /** `GET /v1/sessions/{id}`. */
  getSession(sessionId: string, call?: CallOptions): Promise<T.Session> {
    return this.#json({ method: 'GET', path: `/v1/sessions/${enc(sessionId)}`, idempotent: true }, call);
  }

  /** `DELETE /v1/sessions/{id}` (204). */
  deleteSession(sessionId: string, call?: CallOptions): Promise<void> {
    return this.#empty({ method: 'DELETE', path: `/v1/sessions/${enc(sessionId)}`, idempotent: true }, call);
  }

  /** `POST /v1/tools/fetch`: a GET or HEAD through the tool proxy, under the tenant's policy (SPEC §10). */
  toolFetch(body: T.ToolFetchRequest, call?: CallOptions): Promise<T.ToolFetchResult> {
    // GET and HEAD are safe: a lost answer may be asked for again.
    return this.#json({ method: 'POST', path: '/v1/tools/fetch', body, idempotent: true }, call);
  }

  /** `POST /v1/tools/search`: a query through the configured search provider (SPEC §10). */
  toolSearch(body: T.ToolSearchRequest, call?: CallOptions): Promise<T.ToolSearchResult> {
    return this.#json({ method: 'POST', path: '/v1/tools/search', body, idempotent: true }, call);
  }

  /** `GET /metrics`: the Prometheus exposition text. */
  async metrics(call?: CallOptions): Promise<string> {
    const { res } = await this.send({ method: 'GET', path: '/metrics', idempotent: true }, call);
    return res.text();
  }

  // ---- control plane ----------------------------------------------------------------------

  /** `POST /v1/pools/{id}/drain`. */
  drainPool(poolId: string, deadlineMs: number, call?: CallOptions): Promise<T.OperationAccepted> {
    const body: T.DrainRequest = { deadline_ms: deadlineMs };
    return this.#json(
      { method: 'POST', path: `/v1/pools/${enc(poolId)}/drain`, body, idempotent: false },
      call,
    );
  }

  /** `POST /v1/pools/{id}/reload`: a new model, or `{ rollback: true }`. */
  reloadPool(
    poolId: string,
    target: { new_model_ref: string } | { rollback: true },
    deadlineMs?: number,
    call?: CallOptions,
  ): Promise<T.OperationAccepted> {
    const body = (
      deadlineMs === undefined ? target : { ...target, deadline_ms: deadlineMs }
    ) as T.ReloadRequest;
    return this.#json(
      { method: 'POST', path: `/v1/pools/${enc(poolId)}/reload`, body, idempotent: false },
      call,
    );
  }

  /** `GET /v1/pools/{id}/health`. */
  poolHealth(poolId: string, call?: CallOptions): Promise<T.PoolHealth> {
    return this.#json({ method: 'GET', path: `/v1/pools/${enc(poolId)}/health`, idempotent: true }, call);
  }

  /** `GET /v1/replicasets`. */
  replicaSets(call?: CallOptions): Promise<T.ReplicaSets> {
    return this.#json({ method: 'GET', path: '/v1/replicasets', idempotent: true }, call);
  }

  /** `GET /v1/nodes`: pool-managerd nodes with their liveness and GPU reading. */
  listNodes(call?: CallOptions): Promise<T.NodeList> {
    return this.#json({ method: 'GET', path: '/v1/nodes', idempotent: true }, call);
  }

  /** `GET /v1/capabilities`. */
  capabilities(call?: CallOptions): Promise<T.Capabilities> {
    return this.#json({ method: 'GET', path: '/v1/capabilities', idempotent: true }, call);
  }

  /** `GET /v1/plugins`: the policy plugins with their state and counters (SPEC §10). */
  listPlugins(call?: CallOptions): Promise<T.PluginList> {
    return this.#json({ method: 'GET', path: '/v1/plugins', idempotent: true }, call);
  }

  /**
   * `POST /v1/plugins/{id}/reload`: swaps a plugin to the module now at its configured path
   * (every load check again); `sha256` moves its digest pin. Answers the new active version.
   */
  reloadPlugin(id: string, body: T.PluginReloadRequest = {}, call?: CallOptions): Promise<T.Plugin> {
    return this.#json(
      { method: 'POST', path: `/v1/plugins/${enc(id)}/reload`, body, idempotent: false },
      call,
    );
  }

  /** `GET /v1/catalog/models`. */
  listCatalogModels(call?: CallOptions): Promise<T.CatalogModelList> {
    return this.#json({ method: 'GET', path: '/v1/catalog/models', idempotent: true }, call);
  }

  /** `POST /v1/catalog/models` (201). */
  createCatalogModel(body: T.CatalogModelRequest, call?: CallOptions): Promise<T.CatalogModel> {
    return this.#json({ method: 'POST', path: '/v1/catalog/models', body, idempotent: false }, call);
  }

  /** `GET /v1/catalog/models/{id}`. */
  getCatalogModel(id: string, call?: CallOptions): Promise<T.CatalogModel> {
    return this.#json({ method: 'GET', path: `/v1/catalog/models/${enc(id)}`, idempotent: true }, call);
  }

  /** `POST /v1/catalog/models/{id}/verify`. */
  verifyCatalogModel(id: string, call?: CallOptions): Promise<T.Verification> {
    return this.#json(
      { method: 'POST', path: `/v1/catalog/models/${enc(id)}/verify`, idempotent: true },
      call,
    );
  }

  /** `POST /v1/catalog/models/{id}/state`. */
  setCatalogModelState(id: string, body: T.StateRequest, call?: CallOptions): Promise<T.CatalogModel> {
    const path = `/v1/catalog/models/${enc(id)}/state`;
    return this.#json({ method: 'POST', path, body, idempotent: false }, call);
  }

  /** `GET /v1/artifacts?tag=&parent=&limit=`. */
  listArtifacts(query: T.ArtifactQuery = {}, call?: CallOptions): Promise<T.ArtifactList> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const path = `/v1/artifacts${qs.size > 0 ? `?${qs.toString()}` : ''}`;
    return this.#json({ method: 'GET', path, idempotent: true }, call);
  }

  /** `POST /v1/artifacts` (201; idempotent by content address). */
  createArtifact(body: T.ArtifactRequest, call?: CallOptions): Promise<T.ArtifactRef> {
    return this.#json({ method: 'POST', path: '/v1/artifacts', body, idempotent: true }, call);
  }

  /** `GET /v1/artifacts/{id}`. */
  getArtifact(id: string, call?: CallOptions): Promise<T.Artifact> {
    return this.#json({ method: 'GET', path: `/v1/artifacts/${enc(id)}`, idempotent: true }, call);
  }

  /** `POST /v1/nodes/register` (pool-managerd, node credential). */
  registerNode(report: T.NodeReport, call?: CallOptions): Promise<T.RegisterAnswer> {
    return this.#json({ method: 'POST', path: '/v1/nodes/register', body: report, idempotent: true }, call);
  }

  /** `POST /v1/nodes/{id}/heartbeat` (pool-managerd, node credential). */
  nodeHeartbeat(nodeId: string, report: T.NodeReport, call?: CallOptions): Promise<T.HeartbeatAnswer> {
    const path = `/v1/nodes/${enc(nodeId)}/heartbeat`;
    return this.#json({ method: 'POST', path, body: report, idempotent: false }, call);
  }
}

/** Session budget remainders from the 202's `X-Budget-*` headers (ORCH-3099). */
export interface Budget {
  readonly tokensRemaining?: number;
  readonly timeRemainingMs?: number;
  readonly costRemaining?: number;
}

function budgetHeaders(h: Headers): Budget | undefined {
  const num = (name: string): number | undefined => {
    const v = h.get(name);
    return v === null ? undefined : Number(v);
  };
  const tokens = num('x-budget-tokens-remaining');
  const time = num('x-budget-time-remaining-ms');
  const cost = num('x-budget-cost-remaining');
  if (tokens === undefined && time === undefined && cost === undefined) return undefined;
  return {
    ...(tokens === undefined ? {} : { tokensRemaining: tokens }),
    ...(time === undefined ? {} : { timeRemainingMs: time }),
    ...(cost === undefined ? {} : { costRemaining: cost }),
  };
}

async function readEnvelope(res: Response): Promise<T.ErrorEnvelope | undefined> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === 'object' && body !== null && 'code' in body && 'message' in body)
      return body as T.ErrorEnvelope;
  } catch {
    // not JSON: the error carries the status only
  }
  return undefined;
}

/** Path segment encoding that keeps `:` readable (`sha256:…` ids), as RFC 3986 allows. */
const enc = (s: string): string => encodeURIComponent(s).replace(/%3A/gi, ':');
