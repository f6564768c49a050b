/**
 * A task's SSE stream as typed events, resumed across dropped connections with `Last-Event-ID`
 * (SPEC §2.2): the server keeps a task's events until it is finished and read, so a reconnect
 * continues exactly after the last event this iterator yielded.
 */
import { SseParser } from '../util/sse-parser.js';
import { OrchStreamError } from './orch-http-error.js';
import type { CallOptions } from './call-options.js';
import { sleep } from './retry-policy.js';
import type { TaskEvent } from './types.js';

export interface StreamOptions extends CallOptions {
  /** Resume after this event id (e.g. one persisted by an earlier process). */
  readonly lastEventId?: number | undefined;
  /** Reconnects allowed without progress before giving up (default 5). */
  readonly maxReconnects?: number | undefined;
  /** Pause before each reconnect, doubled per consecutive failure (default 50 ms). */
  readonly reconnectDelayMs?: number | undefined;
}

/** What a stream needs of the client: one request under the client's retry policy. */
export interface StreamTransport {
  send(
    req: {
      readonly method: 'GET';
      readonly path: string;
      readonly headers: Record<string, string>;
      readonly idempotent: boolean;
    },
    call: CallOptions,
  ): Promise<{ readonly res: Response }>;
}

const EVENTS = new Set(['started', 'token', 'metrics', 'end', 'error']);

export async function* streamTaskEvents(
  client: StreamTransport,
  taskId: string,
  opts: StreamOptions,
): AsyncGenerator<TaskEvent, void, undefined> {
  let lastId = opts.lastEventId;
  let failures = 0;
  const maxReconnects = opts.maxReconnects ?? 5;
  const baseDelay = opts.reconnectDelayMs ?? 50;
  for (;;) {
    let cause: unknown;
    try {
      const { res } = await client.send(
        {
          method: 'GET',
          path: `/v1/tasks/${encodeURIComponent(taskId)}/stream`,
          headers: {
            accept: 'text/event-stream',
            ...(lastId === undefined ? {} : { 'last-event-id': String(lastId) }),
          },
          idempotent: true,
        },
        opts,
      );
      if (!res.body) throw new OrchStreamError('stream response without a body', lastId);
      const parser = new SseParser();
      for await (const chunk of res.body) {
        for (const rec of parser.push(chunk as Uint8Array)) {
          if (rec.event === undefined || !EVENTS.has(rec.event)) continue;
          const id = rec.id === undefined ? (lastId ?? -1) + 1 : Number(rec.id);
          // A replay overlapping what was already yielded is skipped: no event twice.
          if (lastId !== undefined && id <= lastId) continue;
          lastId = id;
          failures = 0;
          const ev = { event: rec.event, id, data: JSON.parse(rec.data) as unknown } as TaskEvent;
          yield ev;
          if (ev.event === 'end' || ev.event === 'error') return;
        }
      }
    } catch (err) {
      // HTTP errors (404, 401 …) are answers, not dropped connections: no reconnect.
      if (opts.signal?.aborted || (err as Error).name === 'OrchHttpError') throw err;
      cause = err;
    }
    if (++failures > maxReconnects)
      throw new OrchStreamError(
        `stream of task ${taskId} ended without a terminal event after ${maxReconnects} reconnects` +
          (cause instanceof Error ? `: ${cause.message}` : ''),
        lastId,
      );
    await sleep(baseDelay * 2 ** (failures - 1), opts.signal);
  }
}
