/**
 * One simulated engine process: an HTTP server speaking one engine's dialect over a `SimEngine`,
 * plus an admin endpoint for fault injection (`POST /__sim/faults`, `GET /__sim/state`).
 * Triton also serves its metrics on a separate port, as the real server does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { llamacppRoutes, type LlamacppSimOptions } from './dialects/llamacpp.js';
import { tgiRoutes } from './dialects/tgi.js';
import { TritonDialect, type TritonSimOptions } from './dialects/triton.js';
import { vllmRoutes } from './dialects/vllm.js';
import { num, obj, readJson, sendJson, sendText } from './http-util.js';
import { refuseWithoutKey } from './engine-auth.js';
import type { SimEngine, SimFaults } from './sim-engine.js';

import type { SimDialect } from './sim-dialect.js';

export { SIM_DIALECTS, type SimDialect } from './sim-dialect.js';

/**
 * Whether the engine answers HTTP while its model loads. llama-server listens at once and answers
 * 503 on `/health` until loaded; Triton serves its health endpoints while models load. vLLM binds
 * its socket before the engine starts but calls `listen` only once the model is loaded
 * (`vllm/entrypoints/openai/api_server.py` `create_server_socket` / `serve_http`), and TGI's
 * launcher starts the router (the HTTP server) only after every shard reported ready
 * (`launcher/src/main.rs` `spawn_webserver`, v1.4.5 to v3.3.6): connections are refused meanwhile.
 */
export const LISTENS_WHILE_LOADING: Readonly<Record<SimDialect, boolean>> = {
  llamacpp: true,
  vllm: false,
  tgi: false,
  triton: true,
};

export interface SimServerOptions {
  readonly dialect: SimDialect;
  readonly engine: SimEngine;
  readonly host: string;
  readonly port: number;
  /** Triton only: the metrics port (default: an ephemeral one). */
  readonly metricsPort?: number | undefined;
  /**
   * The engine's API key: llama.cpp, vLLM and TGI dialects refuse requests without it where
   * the real engine does, with its refusal (`./engine-auth.ts`). Triton has none.
   */
  readonly apiKey?: string | undefined;
  /** Triton only: the model repository served (`./dialects/triton.ts`). */
  readonly triton?: TritonSimOptions | undefined;
  /** llama.cpp only: what llama-server's command line would decide (`--embeddings`, ...). */
  readonly llamacpp?: LlamacppSimOptions | undefined;
}

export interface RunningSim {
  readonly port: number;
  readonly metricsPort: number | undefined;
  close(): Promise<void>;
}

/** Faults from the admin endpoint's JSON (snake_case, durations relative to now). */
export function faultsFromJson(body: unknown, now = Date.now()): SimFaults {
  const b = obj(body);
  const f: SimFaults = {};
  if (num(b['crash']) !== undefined) f.crash = num(b['crash']);
  if (b['hang'] === true) f.hang = true;
  if (num(b['slow_token_ms']) !== undefined) f.slowTokenMs = num(b['slow_token_ms']);
  if (num(b['loading_ms']) !== undefined) f.loadingUntilMs = now + (num(b['loading_ms']) ?? 0);
  if (num(b['oom_after_tokens']) !== undefined) f.oomAfterTokens = num(b['oom_after_tokens']);
  if (b['refuse'] === true) f.refuse = true;
  return f;
}

async function admin(
  req: IncomingMessage,
  res: ServerResponse,
  e: SimEngine,
  dialect: SimDialect,
): Promise<boolean> {
  const url = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && url === '/__sim/faults') {
    const body = await readJson(req);
    const faults = faultsFromJson(body);
    // An engine that does not listen while it loads has no "loading" answer to give once up.
    if (faults.loadingUntilMs !== undefined && !LISTENS_WHILE_LOADING[dialect]) {
      sendJson(res, 400, {
        error: `the ${dialect} engine does not answer while it loads (it refuses connections until loaded): use --load-ms at start`,
      });
      return true;
    }
    e.faults = faults;
    sendJson(res, 200, { faults: e.faults });
    return true;
  }
  if (req.method === 'GET' && url === '/__sim/state') {
    sendJson(res, 200, {
      // The engine process itself (tests freeze it with SIGSTOP, as a hung engine would be).
      pid: process.pid,
      running: e.running,
      waiting: e.waiting,
      kv_usage: e.kvUsage,
      loading: e.loading(),
      faults: e.faults,
      stats: e.stats,
      options: e.opts,
    });
    return true;
  }
  return false;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startSimServer(o: SimServerOptions): Promise<RunningSim> {
  const triton = o.dialect === 'triton' ? new TritonDialect(o.engine, o.triton) : undefined;
  const route = (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    switch (o.dialect) {
      case 'llamacpp':
        return llamacppRoutes(req, res, o.engine, o.llamacpp);
      case 'vllm':
        return vllmRoutes(req, res, o.engine);
      case 'tgi':
        return tgiRoutes(req, res, o.engine);
      case 'triton':
        return triton?.routes(req, res) ?? Promise.resolve(false);
    }
  };
  const server = createServer((req, res) => {
    (async () => {
      if (refuseWithoutKey(o.dialect, req, res, o.apiKey)) return;
      if (await admin(req, res, o.engine, o.dialect)) return;
      if (await route(req, res)) return;
      sendJson(res, 404, { error: `no route for ${req.method ?? ''} ${req.url ?? ''}` });
    })().catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 400, { error: (err as Error).message });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 60_000;
  // Load first, then listen, where the engine does so (connections are refused meanwhile).
  while (!LISTENS_WHILE_LOADING[o.dialect] && o.engine.loading()) await new Promise((r) => setTimeout(r, 10));
  const port = await listen(server, o.host, o.port);
  let metrics: Server | undefined;
  let metricsPort: number | undefined;
  if (triton !== undefined) {
    metrics = createServer((req, res) => {
      if (req.url === '/metrics') sendText(res, 200, triton.metrics());
      else sendText(res, 404, 'not found');
    });
    metricsPort = await listen(metrics, o.host, o.metricsPort ?? 0);
  }
  return {
    port,
    metricsPort,
    close: async () => {
      server.closeAllConnections();
      metrics?.closeAllConnections();
      await Promise.all([
        new Promise((r) => server.close(r)),
        metrics ? new Promise((r) => metrics.close(r)) : undefined,
      ]);
    },
  };
}
