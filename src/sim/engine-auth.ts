/**
 * API keys as each real engine checks them, so that tests of credentials run against the
 * simulator (SPEC §11): which paths need the key, which header carries it, and the exact refusal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson, sendText } from './http-util.js';
import type { SimDialect } from './sim-dialect.js';

/** The variable each engine reads its key from (the simulator reads the same; see each driver's `apiKey.env`). */
export const SIM_KEY_ENV: Readonly<Record<SimDialect, string | undefined>> = {
  llamacpp: 'LLAMA_API_KEY',
  vllm: 'VLLM_API_KEY',
  tgi: 'API_KEY',
  triton: undefined,
};

// llama-server (the pinned build, checked against it in test/sim/engine-auth.test.ts): `/health`
// and `/v1/health` are public; everything else needs `Authorization: Bearer <key>` or
// `X-Api-Key: <key>`.
const LLAMA_PUBLIC = new Set(['/health', '/v1/health']);
// TGI router/src/server.rs (v2.3.0 on): the key guards the generation routes only; /health,
// /info, /metrics, /v1/models and /chat_tokenize stay open. Its check compares
// `Authorization` with `Bearer <key>` ignoring case.
const TGI_GUARDED = new Set([
  '/',
  '/generate',
  '/generate_stream',
  '/v1/chat/completions',
  '/v1/completions',
  '/vertex',
  '/invocations',
  '/tokenize',
]);

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Answers the engine's refusal and returns true when `req` lacks the key the dialect would
 * demand for its path; false when the request may go on. `/__sim/*` (fault injection) needs the
 * key too whenever one is set: it is not the engine's, but it must not be open either.
 */
export function refuseWithoutKey(
  dialect: SimDialect,
  req: IncomingMessage,
  res: ServerResponse,
  key: string | undefined,
): boolean {
  if (key === undefined) return false;
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const bearer = header(req, 'authorization');
  const ok = bearer === `Bearer ${key}`;
  if (path.startsWith('/__sim/')) {
    if (ok) return false;
    sendJson(res, 401, { error: 'the simulator was started with an API key' });
    return true;
  }
  switch (dialect) {
    case 'llamacpp':
      if (LLAMA_PUBLIC.has(path) || ok || header(req, 'x-api-key') === key) return false;
      sendJson(res, 401, {
        error: { message: 'Invalid API Key', type: 'authentication_error', code: 401 },
      });
      return true;
    case 'vllm':
      // vllm/entrypoints/openai/api_server.py: only `/v1…` paths; OPTIONS passes.
      if (!path.startsWith('/v1') || req.method === 'OPTIONS' || ok) return false;
      sendJson(res, 401, { error: 'Unauthorized' });
      return true;
    case 'tgi':
      if (req.method !== 'POST' || !TGI_GUARDED.has(path)) return false;
      if (bearer !== undefined && bearer.toLowerCase() === `bearer ${key}`.toLowerCase()) return false;
      // axum's bare `StatusCode::UNAUTHORIZED`: no body.
      sendText(res, 401, '');
      return true;
    case 'triton':
      return false;
  }
}
