/**
 * The SSE relay's socket writes: the headers leave with the replayed events, and the events of
 * one tick (an engine chunk of several tokens) leave in one write, byte for byte as formatted.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskEvent } from '../../src/domain/events.js';
import { relay } from '../../src/http/sse.js';
import { EventLog } from '../../src/tasks/event-log.js';

const started: TaskEvent = { type: 'started', data: { queue_position: 0, predicted_start_ms: 0 } };
const token = (i: number): TaskEvent => ({ type: 'token', data: { t: `t${i}`, i } });
const end = (n: number): TaskEvent => ({ type: 'end', data: { tokens_out: n, decode_ms: 1 } });

let server: Server | undefined;

afterEach(async () => {
  const s = server;
  server = undefined;
  if (s) await new Promise<void>((r) => s.close(() => r()));
});

/** Counts the writes that reach the socket (one `writev` for corked chunks counts once). */
function countWrites(socket: Socket): { readonly chunks: string[][] } {
  const seen = { chunks: [] as string[][] };
  const s = socket as unknown as {
    _writeGeneric: (writev: boolean, data: unknown, encoding: string, cb: () => void) => void;
  };
  const original = s._writeGeneric.bind(socket);
  s._writeGeneric = (writev, data, encoding, cb) => {
    const parts = writev
      ? (data as { chunk: Buffer | string }[]).map((c) => String(c.chunk))
      : [String(data)];
    seen.chunks.push(parts);
    original(writev, data, encoding, cb);
  };
  return seen;
}

/** Serves one relay of `log` and returns the body the client read and the socket's writes. */
async function serve(log: EventLog, live?: () => void): Promise<{ body: string; writes: string[][] }> {
  let writes: { readonly chunks: string[][] } = { chunks: [] };
  server = createServer((req, res) => {
    writes = countWrites(req.socket);
    void relay(res, { log, afterSeq: 0, headers: {}, onDisconnect: () => undefined, heartbeatMs: 60_000 });
    // After the relay's first write, in a later turn of the event loop.
    if (live) setImmediate(live);
  });
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    })
      .on('error', reject)
      .end();
  });
  return { body, writes: writes.chunks };
}

describe('SSE relay writes', () => {
  it('an ended task: headers, every event and the end of the body in one write', async () => {
    const log = new EventLog(100);
    log.append(started);
    for (let i = 0; i < 3; i++) log.append(token(i));
    log.append(end(3));
    const { body, writes } = await serve(log);
    expect(body).toBe(
      'event: started\nid: 1\ndata: {"queue_position":0,"predicted_start_ms":0}\n\n' +
        'event: token\nid: 2\ndata: {"t":"t0","i":0}\n\n' +
        'event: token\nid: 3\ndata: {"t":"t1","i":1}\n\n' +
        'event: token\nid: 4\ndata: {"t":"t2","i":2}\n\n' +
        'event: end\nid: 5\ndata: {"tokens_out":3,"decode_ms":1}\n\n',
    );
    expect(writes).toHaveLength(1);
    expect(writes[0]?.[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('live: the tokens of one tick leave in one write after the replay', async () => {
    const log = new EventLog(100);
    log.append(started);
    const { body, writes } = await serve(log, () => {
      log.append(token(0));
      log.append(token(1));
      log.append(end(2));
    });
    expect(writes).toHaveLength(2);
    expect(writes[0]?.join('')).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n[^]*event: started\nid: 1\n/);
    // Chunked transfer encoding frames each event: compare the payloads.
    expect(writes[1]?.join('')).toContain('event: token\nid: 2\ndata: {"t":"t0","i":0}\n\n');
    expect(writes[1]?.join('')).toContain('event: token\nid: 3\ndata: {"t":"t1","i":1}\n\n');
    expect(writes[1]?.join('')).toContain('event: end\nid: 4\ndata: {"tokens_out":2,"decode_ms":1}\n\n');
    expect(body).toBe(
      'event: started\nid: 1\ndata: {"queue_position":0,"predicted_start_ms":0}\n\n' +
        'event: token\nid: 2\ndata: {"t":"t0","i":0}\n\n' +
        'event: token\nid: 3\ndata: {"t":"t1","i":1}\n\n' +
        'event: end\nid: 4\ndata: {"tokens_out":2,"decode_ms":1}\n\n',
    );
  });
});
