/**
 * `EngineHttp.sse` leaving a stream early: after the engine's own final frame the connection is
 * kept (the rest of the body is read out), mid-stream it is closed (how engines free the slot).
 */
import { createServer, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EngineHttp } from '../../src/engines/engine-http.js';
import { OrchError } from '../../src/errors/orch-error.js';

let server: Server;
let http: EngineHttp;
const sockets = new Set<Socket>();
let connections = 0;
/** The response of the request in flight, held open after its frames until the test ends it. */
let held: ServerResponse | undefined;
let heldReady: (() => void) | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"n":1}\n\ndata: {"n":2}\n\ndata: [DONE]\n\n');
    held = res;
    heldReady?.();
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  http = new EngineHttp({
    engine: 'vllm',
    baseUrl: `http://127.0.0.1:${port}`,
    // One connection: a second request waits for the first one's, and opens a new one only if
    // that one was closed.
    connections: 1,
    mapHttpError: (status) => new OrchError('WORKER_RESET', `HTTP ${status}`),
  });
});

afterEach(() => {
  held = undefined;
  heldReady = undefined;
});

afterAll(async () => {
  await http.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** Reads records until `[DONE]` (or `stopAt` records), then leaves the loop; `ended` is told. */
async function readUntil(stopAt = Infinity): Promise<string[]> {
  const seen: string[] = [];
  let done = false;
  const responded = new Promise<void>((r) => (heldReady = r));
  for await (const rec of http.sse('/v1/completions', {}, new AbortController().signal, () => done)) {
    seen.push(rec.data);
    if (rec.data === '[DONE]') done = true;
    if (done || seen.length >= stopAt) break;
  }
  await responded;
  return seen;
}

/** Resolves once `socket` has closed (or at once if it already has). */
const closed = (socket: Socket): Promise<void> =>
  socket.destroyed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r()));

describe('EngineHttp.sse', () => {
  it('after the final frame, the rest of the body is read out and the connection is reused', async () => {
    const before = connections;
    expect(await readUntil()).toEqual(['{"n":1}', '{"n":2}', '[DONE]']);
    // The engine ends its body only after the consumer has left the loop.
    held?.end();
    const again = readUntil();
    expect(await again).toHaveLength(3);
    held?.end();
    expect(connections - before).toBe(1);
  });

  it('leaving mid-stream closes the connection, so the engine frees the slot', async () => {
    expect(await readUntil(1)).toEqual(['{"n":1}']);
    const [socket] = [...sockets];
    if (!socket) throw new Error('no connection');
    await closed(socket);
    expect(held?.writableEnded).toBe(false);
  });
});
