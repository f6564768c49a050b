/**
 * A task's event log and its SSE relay (SPEC §2.2, §17): a bounded window that keeps `started`
 * and the newest events, readers that get either every event they ask for or a typed refusal,
 * and a terminal event that always reaches the client.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/domain/events.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { relay, resumeAfter, type SseRelayOptions } from '../../src/http/sse.js';
import { EventLog, SEQ_EPOCH, type LoggedEvent } from '../../src/tasks/event-log.js';
import { parseSse } from '../../src/util/sse-parser.js';

const started: TaskEvent = { type: 'started', data: { queue_position: 0, predicted_start_ms: 0 } };
const token = (i: number): TaskEvent => ({ type: 'token', data: { t: `t${i}`, i } });
const end = (n: number): TaskEvent => ({ type: 'end', data: { tokens_out: n, decode_ms: 1 } });

/** `started` then `tokens` tokens, optionally ended. */
function logWith(maxEvents: number, tokens: number, ended: boolean): EventLog {
  const log = new EventLog(maxEvents);
  log.append(started);
  for (let i = 0; i < tokens; i++) log.append(token(i));
  if (ended) log.append(end(tokens));
  return log;
}

const seqs = (events: readonly LoggedEvent[]) => events.map((e) => e.seq);

function refusal(fn: () => unknown): OrchError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(OrchError);
  return caught as OrchError;
}

describe('EventLog', () => {
  it('keeps started plus the newest events up to the bound', () => {
    const log = logWith(5, 20, false);
    expect(log.lastSeq).toBe(21);
    expect(log.size).toBe(5);
    expect(seqs(log.since(0))).toEqual([1, 18, 19, 20, 21]);
    expect(log.since(0)[0]?.event.type).toBe('started');
    expect(seqs(log.since(19))).toEqual([20, 21]);
    expect(log.since(21)).toEqual([]);
  });

  it('never hands a reader a hole: a read is complete from where it starts, or refused', () => {
    const log = new EventLog(7);
    log.append(started);
    for (let i = 0; i < 200; i++) {
      log.append(token(i));
      const missing = log.unretained(0);
      const from = missing === undefined ? 0 : missing.to;
      const tokens = log.since(from).flatMap((e) => (e.event.type === 'token' ? [e.event.data.i] : []));
      // Token i is seq i + 2, so a reader resuming after seq `from` first sees token from - 1.
      const first = missing === undefined ? 0 : from - 1;
      expect(tokens).toEqual(Array.from({ length: i - first + 1 }, (_, k) => first + k));
    }
  });

  it('appends in constant time at the bound', () => {
    const log = new EventLog(100_000);
    log.append(started);
    const t0 = performance.now();
    for (let i = 0; i < 400_000; i++) log.append(token(i));
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(log.size).toBe(100_000);
    expect(log.since(399_990).length).toBe(11);
  });

  it('names the seqs a reader would miss, and nothing while none was dropped', () => {
    const fresh = logWith(100, 10, false);
    expect(fresh.unretained(0)).toBeUndefined();
    expect(fresh.unretained(5)).toBeUndefined();

    // Retained: 1, 18..21; dropped: 2..17.
    const log = logWith(5, 20, false);
    expect(log.unretained(0)).toEqual({ from: 2, to: 17 });
    expect(log.unretained(1)).toEqual({ from: 2, to: 17 });
    expect(log.unretained(10)).toEqual({ from: 11, to: 17 });
    expect(log.unretained(16)).toEqual({ from: 17, to: 17 });
    expect(log.unretained(17)).toBeUndefined();
    expect(log.unretained(21)).toBeUndefined();
  });

  it('keeps the terminal event however small the bound', () => {
    const log = logWith(1, 10, true);
    expect(log.closed).toBe(true);
    expect(log.since(0).map((e) => e.event.type)).toEqual(['started', 'end']);
    expect(log.append(token(99))).toBeUndefined();
  });

  it('counts its listeners, and drops them all at the terminal event', () => {
    const log = logWith(10, 0, false);
    expect(log.listenerCount).toBe(0);
    const a = log.subscribe(() => undefined);
    const b = log.subscribe(() => undefined);
    expect([log.listenerCount, log.watched]).toEqual([2, true]);
    a();
    expect(log.listenerCount).toBe(1);
    log.append(end(0));
    expect([log.listenerCount, log.watched]).toEqual([0, false]);
    b();
    expect(log.listenerCount).toBe(0);
    expect(log.subscribe(() => undefined)()).toBeUndefined();
    expect(log.listenerCount).toBe(0);
  });
});

describe('resumeAfter (Last-Event-ID)', () => {
  it('accepts an absent, malformed or seen id', () => {
    const log = logWith(100, 5, false);
    expect(resumeAfter(log, undefined, 'task-1')).toBe(0);
    expect(resumeAfter(log, 'abc', 'task-1')).toBe(0);
    expect(resumeAfter(log, '6', 'task-1')).toBe(6);
    expect(resumeAfter(log, ['3', '4'], 'task-1')).toBe(3);
  });

  it('refuses an id beyond a live task’s last event with INVALID_PARAMS', () => {
    const log = logWith(100, 5, false);
    const e = refusal(() => resumeAfter(log, '50', 'task-1'));
    expect([e.code, e.httpStatus, e.retriable]).toEqual(['INVALID_PARAMS', 400, false]);
    expect(e.message).toContain('Last-Event-ID');
    expect(e.message).toContain('50');
    expect(e.message).toContain('6');
  });

  it('lets an ended task be read up to its terminal event, which is still due; beyond it is a 400', () => {
    const log = logWith(100, 5, true);
    expect(resumeAfter(log, String(log.lastSeq), 'task-1')).toBe(log.lastSeq);
    const e = refusal(() => resumeAfter(log, String(log.lastSeq + 1), 'task-1'));
    expect([e.code, e.httpStatus]).toEqual(['INVALID_PARAMS', 400]);
  });

  it('refuses a read that would skip dropped events with EVENTS_EXPIRED (410)', () => {
    const log = logWith(5, 20, true);
    for (const id of [undefined, '0', '1', '16']) {
      const e = refusal(() => resumeAfter(log, id, 'task-1'));
      expect([e.code, e.httpStatus, e.retriable]).toEqual(['EVENTS_EXPIRED', 410, false]);
      expect(e.message).toContain('Last-Event-ID: 18');
      expect(e.message).toContain('task-1');
    }
    expect(refusal(() => resumeAfter(log, undefined, 't')).message).toMatch(/events 2\.\.18 /);
    expect(resumeAfter(log, '18', 'task-1')).toBe(18);
  });
});

describe('relay', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  /** Serves `relay` with `opts(req)` on a loopback port; returns the URL. */
  async function serve(opts: (req: IncomingMessage) => SseRelayOptions): Promise<string> {
    server = createServer((req: IncomingMessage, res: ServerResponse) => void relay(res, opts(req)));
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const base = (
    log: EventLog,
    afterSeq: number,
    onDisconnect: () => void = () => undefined,
  ): SseRelayOptions => ({
    log,
    afterSeq,
    headers: { 'X-Correlation-Id': 'task-corr' },
    heartbeatMs: 60_000,
    onDisconnect,
  });

  async function read(url: string): Promise<{ ids: number[]; names: string[]; headers: Headers }> {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    const records = parseSse(await res.text());
    return {
      ids: records.map((r) => Number(r.id)),
      names: records.map((r) => r.event ?? ''),
      headers: res.headers,
    };
  }

  it('sends the terminal event of an ended task whatever Last-Event-ID says, then closes', async () => {
    const log = logWith(100, 3, true);
    let after = 0;
    const url = await serve(() => base(log, after));
    for (after of [4, 5, 6, 1_000]) {
      const r = await read(url);
      expect([r.ids, r.names]).toEqual([[5], ['end']]);
      expect(r.headers.get('x-correlation-id')).toBe('task-corr');
    }
  });

  it('replays after Last-Event-ID, then follows live events to the terminal one', async () => {
    const log = logWith(100, 3, false);
    const url = await serve(() => base(log, 2));
    const pending = read(url);
    await new Promise((r) => setTimeout(r, 50));
    log.append(token(3));
    log.append(end(4));
    const r = await pending;
    expect(r.ids).toEqual([3, 4, 5, 6]);
    expect(r.names.at(-1)).toBe('end');
  });

  it('leaves the log before reporting a disconnect, so the handler sees who is still watching', async () => {
    const log = logWith(100, 1, false);
    const seen: number[] = [];
    const url = await serve(() => base(log, 0, () => seen.push(log.listenerCount)));
    const open = (): Promise<IncomingMessage> => new Promise((resolve) => request(url, resolve).end());
    const a = await open();
    const b = await open();
    await new Promise((r) => setTimeout(r, 50));
    expect(log.listenerCount).toBe(2);
    a.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([1]);
    b.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([1, 0]);
  });
});

describe('EventLog after a restart (firstSeq)', () => {
  it('numbers from firstSeq and keeps the retention rules relative to it', () => {
    const first = SEQ_EPOCH + 1;
    const log = new EventLog(4, first);
    log.append({ type: 'started', data: { queue_position: 0, predicted_start_ms: 0 } });
    for (let i = 0; i < 5; i++) log.append({ type: 'token', data: { t: 'x', i } });
    expect(log.firstSeq).toBe(first);
    expect(log.lastSeq).toBe(first + 5);
    // Head plus the newest three: seqs first+1 and first+2 fell out.
    expect(log.since(0).map((e) => e.seq)).toEqual([first, first + 3, first + 4, first + 5]);
    expect(log.unretained(0)).toEqual({ from: first + 1, to: first + 2 });
    expect(log.unretained(first + 2)).toBeUndefined();
    expect(log.since(first + 3).map((e) => e.seq)).toEqual([first + 4, first + 5]);
  });

  it('an id from an earlier run replays the whole new run; one beyond it is refused', () => {
    const log = new EventLog(16, 2 * SEQ_EPOCH + 1);
    log.append({ type: 'started', data: { queue_position: 0, predicted_start_ms: 0 } });
    log.append({ type: 'token', data: { t: 'a', i: 0 } });
    for (const old of ['1', '2', String(SEQ_EPOCH + 7)])
      expect(resumeAfter(log, old, 't')).toBe(2 * SEQ_EPOCH);
    expect(resumeAfter(log, String(2 * SEQ_EPOCH + 1), 't')).toBe(2 * SEQ_EPOCH + 1);
    expect(() => resumeAfter(log, String(2 * SEQ_EPOCH + 3), 't')).toThrow(/beyond the stream/);
  });
});
