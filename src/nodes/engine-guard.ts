/**
 * An authenticating reverse proxy pool-managerd runs in front of an engine that has no API key
 * (Triton): the engine listens on loopback only, the guard on the host's interface, and a request
 * passes only with `Authorization: Bearer <key>`. Bodies stream both ways unbuffered (SSE token
 * streams included), and a client that goes away aborts the engine request, so cancelling still
 * frees the engine's slot.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  Agent,
  createServer,
  request,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EngineGuardOptions {
  /** Interface to listen on (the pool's configured `launch.host`). */
  readonly host: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number;
  /** The engine's current loopback base URL (it changes when the engine restarts); undefined while none runs. */
  readonly target: () => string | undefined;
  /** The key callers must present (it changes with each launch of the pool). */
  readonly key: () => string | undefined;
}

export interface EngineGuard {
  /** Base URL of the guard, as reachable on its interface. */
  readonly url: string;
  close(): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison of the presented bearer token with the key. */
function authorized(header: string | undefined, key: string | undefined): boolean {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
  if (token === undefined || key === undefined) return false;
  return timingSafeEqual(digest(token), digest(key));
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; the credential stays at the guard.
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'authorization',
]);

function forwardHeaders(h: IncomingMessage['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

function refuse(res: ServerResponse, status: number, error: string): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startEngineGuard(o: EngineGuardOptions): Promise<EngineGuard> {
  const agent = new Agent({ keepAlive: true });
  const server = createServer((req, res) => {
    if (!authorized(req.headers.authorization, o.key())) {
      refuse(res, 401, 'this engine requires the credential pool-managerd issued for it');
      return;
    }
    const base = o.target();
    if (base === undefined) {
      refuse(res, 503, 'the engine is not running');
      return;
    }
    const target = new URL(req.url ?? '/', base);
    const upstream = request(
      target,
      { method: req.method, headers: forwardHeaders(req.headers), agent },
      (up) => {
        const headers: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v;
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (!res.headersSent) refuse(res, 502, `engine unreachable: ${err.message}`);
      else res.destroy();
    });
    // The caller left before the answer ended (a cancelled stream): end the engine request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
