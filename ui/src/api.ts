/**
 * The console's only way to the orchestrator: the public API, called with the operator's key.
 * Typed against the client library's types (generated from the OpenAPI documents), so a changed
 * contract breaks the console's build, not its pages.
 */
import type {
  Artifact,
  ArtifactList,
  ArtifactQuery,
  CatalogModel,
  CatalogModelList,
  ErrorEnvelope,
  NodeList,
  OperationAccepted,
  PoolHealth,
  ReloadRequest,
  ReplicaSets,
  Session,
  SessionList,
  StateRequest,
  TaskEvent,
  TaskList,
  TaskListQuery,
  Verification,
} from '../../src/client/types.js';

export type {
  Artifact,
  CatalogModel,
  NodeSummary,
  PoolHealth,
  ReplicaSet,
  Session,
  TaskEvent,
  TaskSummary,
} from '../../src/client/types.js';

/** A non-2xx answer, with the envelope's code when the server sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

type Method = 'GET' | 'POST' | 'DELETE';

const enc = encodeURIComponent;

function query(q: Record<string, string | number | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') qs.set(k, String(v));
  return qs.size > 0 ? `?${qs.toString()}` : '';
}

export class Api {
  /** @param key the operator's API key; empty for a keyless local orchestrator. */
  constructor(readonly key: string) {}

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.key === '' ? {} : { authorization: `Bearer ${this.key}` }), ...extra };
  }

  async #send(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const res = await fetch(path, {
      method,
      headers: this.#headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(signal === undefined ? {} : { signal }),
    });
    if (!res.ok) throw await apiError(res);
    return res;
  }

  async #json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    return (await (await this.#send(method, path, body)).json()) as T;
  }

  listTasks(q: TaskListQuery = {}): Promise<TaskList> {
    return this.#json('GET', `/v1/tasks${query(q)}`);
  }
  async cancel(id: string): Promise<void> {
    await this.#send('POST', `/v1/tasks/${enc(id)}/cancel`);
  }
  /** The key's tenant's live sessions, most recently used first. */
  sessions(limit = 100): Promise<SessionList> {
    return this.#json('GET', `/v1/sessions${query({ limit })}`);
  }
  /** pool-managerd nodes (control keys). */
  nodes(): Promise<NodeList> {
    return this.#json('GET', '/v1/nodes');
  }
  session(id: string): Promise<Session> {
    return this.#json('GET', `/v1/sessions/${enc(id)}`);
  }
  replicaSets(): Promise<ReplicaSets> {
    return this.#json('GET', '/v1/replicasets');
  }
  poolHealth(id: string): Promise<PoolHealth> {
    return this.#json('GET', `/v1/pools/${enc(id)}/health`);
  }
  drain(id: string, deadlineMs: number): Promise<OperationAccepted> {
    return this.#json('POST', `/v1/pools/${enc(id)}/drain`, { deadline_ms: deadlineMs });
  }
  reload(id: string, body: ReloadRequest): Promise<OperationAccepted> {
    return this.#json('POST', `/v1/pools/${enc(id)}/reload`, body);
  }
  catalog(): Promise<CatalogModelList> {
    return this.#json('GET', '/v1/catalog/models');
  }
  /** One entry, with its lifecycle history. */
  catalogModel(id: string): Promise<CatalogModel> {
    return this.#json('GET', `/v1/catalog/models/${enc(id)}`);
  }
  verify(id: string): Promise<Verification> {
    return this.#json('POST', `/v1/catalog/models/${enc(id)}/verify`);
  }
  setState(id: string, body: StateRequest): Promise<CatalogModel> {
    return this.#json('POST', `/v1/catalog/models/${enc(id)}/state`, body);
  }
  artifacts(q: ArtifactQuery = {}): Promise<ArtifactList> {
    return this.#json('GET', `/v1/artifacts${query(q)}`);
  }
  artifact(id: string): Promise<Artifact> {
    return this.#json('GET', `/v1/artifacts/${enc(id)}`);
  }
  async metrics(): Promise<string> {
    return (await this.#send('GET', '/metrics')).text();
  }

  /**
   * Follows a task's SSE stream until its terminal event or `signal`. `fetch`, not EventSource:
   * the stream needs the `Authorization` header, which EventSource cannot send.
   */
  async stream(id: string, onEvent: (e: TaskEvent) => void, signal: AbortSignal): Promise<void> {
    const res = await this.#send('GET', `/v1/tasks/${enc(id)}/stream`, undefined, signal);
    const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) return;
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const ev = parseFrame(frame);
        if (ev) onEvent(ev);
      }
    }
  }
}

/** One SSE frame (`event:`, `id:`, `data:` lines); comments (keep-alives) give nothing. */
export function parseFrame(frame: string): TaskEvent | undefined {
  let event = '';
  let id = 0;
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = Number(value);
    else if (field === 'data') data.push(value);
  }
  if (event === '' || data.length === 0) return undefined;
  return { event, id, data: JSON.parse(data.join('\n')) as unknown } as TaskEvent;
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const e = JSON.parse(text) as Partial<ErrorEnvelope>;
    if (typeof e.code === 'string') return new ApiError(res.status, e.code, e.message ?? e.code);
  } catch {
    // not an envelope: the status says it all
  }
  return new ApiError(res.status, undefined, `${res.status} ${res.statusText}`);
}
