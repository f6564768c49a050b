/**
 * A loopback HTTP server standing in for the web the tool proxy fetches from: fixed pages of
 * every kind the policy judges (text, JSON, an image, a large body, redirects, a SearxNG search
 * answer, and a route that never answers). It listens on every loopback address so that
 * `localhost` reaches it whichever address the resolver lists first.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Matched by the test configuration's `tools.redact_patterns`. */
export const SECRET_TEXT = 'tok-zq81-SECRET-7734';
/** The test configuration's engine API key: a configured secret. */
export const ENGINE_KEY = 'engine-key-4411-abcd';
export const PAGE = `<p>Contact alice.smith@example.org about ${SECRET_TEXT}; key sk-abcdefghijklmnop1234; engine ${ENGINE_KEY}.</p>`;
export const BIG_BYTES = 200_000;

export interface Upstream {
  readonly port: number;
  /** `http://localhost:<port>` */
  readonly base: string;
  /** Requests seen, as `METHOD path` with the headers they carried. */
  readonly seen: { line: string; headers: IncomingMessage['headers'] }[];
  /** Resolves when a request for `/hang` has arrived. */
  readonly hung: Promise<void>;
  close(): Promise<void>;
}

/**
 * Listens on every loopback address (IPv6 and IPv4 where the host has both), so `localhost`
 * reaches the server whichever address the resolver lists first.
 */
export async function listenOnLoopback(server: Server): Promise<{ port: number; base: string }> {
  try {
    server.listen({ host: '::', port: 0, ipv6Only: false });
    await once(server, 'listening');
  } catch {
    server.listen({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
  }
  const port = (server.address() as AddressInfo).port;
  return { port, base: `http://localhost:${port}` };
}

export async function startUpstream(): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  let arrived!: () => void;
  const hung = new Promise<void>((r) => (arrived = r));
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ line: `${req.method ?? ''} ${url.pathname}${url.search}`, headers: req.headers });
    const send = (
      status: number,
      type: string,
      body: string | Buffer,
      extra: Record<string, string> = {},
    ) => {
      res.writeHead(status, { 'content-type': type, 'set-cookie': 'session=upstream-cookie', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    switch (url.pathname) {
      case '/page':
        return send(200, 'text/html; charset=utf-8', PAGE, { etag: '"v1"' });
      case '/json':
        return send(200, 'application/json', JSON.stringify({ owner: 'bob@example.net', n: 1 }));
      case '/image':
        return send(200, 'image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      case '/big':
        return send(200, 'text/plain', 'x'.repeat(BIG_BYTES));
      case '/missing':
        return send(404, 'text/plain', 'no such page');
      case '/redirect':
        res.writeHead(302, { location: url.searchParams.get('to') ?? '/page' });
        return res.end();
      case '/hang':
        arrived();
        return; // never answers
      case '/search':
        // Queries that make the provider misbehave: never answer, or fail.
        if (url.searchParams.get('q') === 'hang') {
          arrived();
          return;
        }
        if (url.searchParams.get('q') === 'fail') return send(500, 'text/plain', 'provider broke');
        return send(
          200,
          'application/json',
          JSON.stringify({
            query: url.searchParams.get('q'),
            results: [
              {
                url: 'https://docs.example.com/a',
                title: 'Result A',
                content: `Write to carol@example.com (${SECRET_TEXT})`,
                engine: 'x',
              },
              { url: 'https://blocked.example.net/b', title: 'Result B', content: 'denied host' },
              { url: 'https://docs.example.com/c', title: 'Result C', content: 'third' },
            ],
            answers: [],
            suggestions: [],
          }),
        );
      default:
        return send(404, 'text/plain', 'unknown');
    }
  };
  const server: Server = createServer(handler);
  const { port, base } = await listenOnLoopback(server);
  return {
    port,
    base,
    seen,
    hung,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
