/**
 * SSE relay of a task's event log (SPEC §2.2, §17): replay from `started` (or after
 * `Last-Event-ID`), then live events, then close after the terminal event, which is always sent.
 * The stream only reads the log, so a slow or absent client never blocks the producer.
 */
import type { ServerResponse } from 'node:http';
import { OrchError } from '../errors/orch-error.js';
import type { EventLogReader, LoggedEvent } from '../tasks/event-log.js';

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

/**
 * Where a stream request resumes, checked before the response starts so that a refusal is a
 * normal error envelope: an id the client cannot have seen (beyond the task's last event so far,
 * or beyond an ended task's terminal event) is `INVALID_PARAMS`; a read that would skip events
 * the log no longer holds is `EVENTS_EXPIRED`, never a silent gap. Up to and including the
 * terminal event's own id, an ended task's terminal event is still sent.
 */
export function resumeAfter(
  log: EventLogReader,
  lastEventId: string | string[] | undefined,
  taskId: string,
): number {
  const parsed = parseLastEventId(lastEventId);
  // An id below the log's first seq comes from an earlier run of a task taken back after a
  // restart (SPEC §17.1): none of this run's events has been seen, so all of them are replayed.
  const afterSeq = parsed < log.firstSeq ? log.firstSeq - 1 : parsed;
  if (afterSeq > log.lastSeq)
    throw new OrchError(
      'INVALID_PARAMS',
      `Last-Event-ID ${afterSeq} is beyond the stream of task '${taskId}': its last event is seq ${log.lastSeq}`,
    );
  const missing = log.unretained(afterSeq);
  if (missing !== undefined)
    throw new OrchError(
      'EVENTS_EXPIRED',
      `events ${missing.from}..${missing.to} of task '${taskId}' are no longer retained ` +
        `(sse.max_events_per_task keeps 'started' and the newest events); to continue without them, ` +
        `resume with Last-Event-ID: ${missing.to}`,
    );
  return afterSeq;
}

export interface SseRelayOptions {
  readonly log: EventLogReader;
  readonly afterSeq: number;
  readonly headers: Record<string, string>;
  /** Called once when the client goes away before the stream ended, after it left the log. */
  readonly onDisconnect: () => void;
  readonly heartbeatMs: number;
  /**
   * Aborted when the server stops while the task lives on in the journal: the stream ends
   * without a terminal event (the client resumes it with `Last-Event-ID` after the restart).
   */
  readonly signal?: AbortSignal | undefined;
}

/** Streams `log` into `res` until its terminal event, the client disconnects or `signal` aborts. */
export function relay(res: ServerResponse, opts: SseRelayOptions): Promise<void> {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
    ...opts.headers,
  });
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      unsubscribe();
      clearInterval(heartbeat);
      opts.signal?.removeEventListener('abort', stop);
      if (ended) res.end();
      else opts.onDisconnect();
      resolve();
    };
    let unsubscribe: () => void = () => undefined;
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs);
    heartbeat.unref();
    res.on('close', () => finish(false));
    const stop = (): void => {
      if (done) return;
      done = true;
      unsubscribe();
      clearInterval(heartbeat);
      res.end(': the orchestrator is stopping; this task stays queued: reconnect with Last-Event-ID\n\n');
      resolve();
    };
    if (opts.signal?.aborted === true) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });

    // A client past the terminal event still gets it: a stream always ends with one.
    const from = opts.log.closed ? Math.min(opts.afterSeq, opts.log.lastSeq - 1) : opts.afterSeq;
    let corked = false;
    let wrote = false;
    const write = (e: LoggedEvent): void => {
      if (done) return;
      wrote = true;
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
    unsubscribe = opts.log.follow(from, write);
    if (done) unsubscribe();
    // The replay (every log holds `started` at least) took the headers along in its write; a
    // stream with nothing to replay still answers at once.
    else if (!wrote) res.flushHeaders();
  });
}
