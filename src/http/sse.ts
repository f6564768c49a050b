/**
 * SSE relay of a task's event log (SPEC §2.2): replay from `started` (or after `Last-Event-ID`),
 * then live events, then close after the terminal event. The stream only reads the log, so a slow
 * or absent client never blocks the producer.
 */
import type { ServerResponse } from 'node:http';
import type { LoggedEvent } from '../tasks/event-log.js';
import type { EventLog } from '../tasks/event-log.js';

/** `event: <name>\nid: <seq>\ndata: <one-line JSON>\n\n` (ORCH-2002). */
export function formatSse(e: LoggedEvent): string {
  return `event: ${e.event.type}\nid: ${e.seq}\ndata: ${JSON.stringify(e.event.data)}\n\n`;
}

/** A valid `Last-Event-ID` (a non-negative integer), else 0: replay from the start. */
export function parseLastEventId(header: string | string[] | undefined): number {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined || !/^\d{1,15}$/.test(v.trim())) return 0;
  return Number(v.trim());
}

export interface SseRelayOptions {
  readonly log: EventLog;
  readonly afterSeq: number;
  readonly headers: Record<string, string>;
  /** Called once when the client goes away before the stream ended. */
  readonly onDisconnect: () => void;
  readonly heartbeatMs: number;
}

/** Streams `log` into `res` until its terminal event or the client disconnects. */
export function relay(res: ServerResponse, opts: SseRelayOptions): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    ...opts.headers,
  });
  res.flushHeaders();
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      unsubscribe();
      clearInterval(heartbeat);
      if (ended) res.end();
      else opts.onDisconnect();
      resolve();
    };
    let unsubscribe: () => void = () => undefined;
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs);
    heartbeat.unref();
    res.on('close', () => finish(false));

    let last = opts.afterSeq;
    let corked = false;
    const write = (e: LoggedEvent): void => {
      if (e.seq <= last) return;
      last = e.seq;
      // Events of one tick (an engine chunk often carries several tokens) leave in one write.
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(() => {
          corked = false;
          res.uncork();
        });
      }
      res.write(formatSse(e));
      if (e.event.type === 'end' || e.event.type === 'error') finish(true);
    };
    for (const e of opts.log.since(opts.afterSeq)) {
      write(e);
      if (done) return;
    }
    if (opts.log.closed) {
      // Nothing left to wait for (e.g. resumed after the terminal event).
      finish(true);
      return;
    }
    unsubscribe = opts.log.subscribe(write);
  });
}
