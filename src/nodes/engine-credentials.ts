/**
 * Credentials of the engines pool-managerd launches (SPEC §11): no engine port on a GPU host is
 * reachable without one. Engines with an API key of their own (llama-server, vLLM, TGI) get one
 * per launch unless the pool configures it; Triton, which has none, is bound to loopback behind
 * an authenticating guard (`./engine-guard.ts`) that takes the same kind of key.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { ResolvedPool } from '../config/resolved-config.js';
import { isLoopbackHost } from '../config/resolve-config.js';
import { KEYED_ENGINES } from '../config/resolve-engine-key.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import { GENERATED_SECRETS } from '../util/redact.js';

/**
 * A fresh engine key: 256 random bits, URL-safe (it goes into an HTTP header). It is known to
 * every redactor of this process from then on (it is in no configuration to be found in).
 */
export function generateEngineKey(): string {
  const key = randomBytes(32).toString('base64url');
  GENERATED_SECRETS.addLiteral(key);
  return key;
}

/** What pool-managerd launches for a configured pool, and how the orchestrator must reach it. */
export interface SecuredPool {
  /** The pool as the supervisor launches it: with its key, and a keyless engine on loopback. */
  readonly pool: ResolvedPool;
  /** The bearer key the orchestrator sends (the engine's, or the guard's); none for a keyless engine on loopback. */
  readonly key: string | undefined;
  /** Set when a guard must listen on this interface in front of the loopback engine. */
  readonly guardHost: string | undefined;
}

/**
 * Gives `pool` a key (the configured one, or a new one for this launch) and, for engines without
 * API keys bound beyond loopback, moves the engine to 127.0.0.1 behind a guard on the
 * configured interface.
 */
export function securePool(pool: ResolvedPool, generate: () => string = generateEngineKey): SecuredPool {
  const keyed = KEYED_ENGINES.has(pool.engine);
  const guardHost = !keyed && !isLoopbackHost(pool.launch.host) ? pool.launch.host : undefined;
  const key = keyed || guardHost !== undefined ? (pool.launch.apiKey ?? generate()) : undefined;
  const launch = {
    ...pool.launch,
    // A keyless engine is not told the key (it could not use it); the guard checks it instead.
    apiKey: keyed ? key : undefined,
    ...(guardHost === undefined ? {} : { host: '127.0.0.1' }),
  };
  return { pool: { ...pool, launch }, key, guardHost };
}

/**
 * Whether the engine at `baseUrl` refuses a request without its key (401): an engine version
 * that ignores the key variable must never be advertised as protected. Undefined for engines
 * without API keys (their guard is ours).
 */
export async function enforcesKey(
  engine: ResolvedPool['engine'],
  baseUrl: string,
  timeoutMs = 5_000,
): Promise<boolean | undefined> {
  // A request each keyed engine refuses without its key (its driver's; a harmless read where there is one).
  const probe = ENGINE_DRIVERS[engine].apiKey?.probe;
  if (probe === undefined) return undefined;
  const res = await request(`${baseUrl}${probe.path}`, {
    method: probe.method,
    headers: { 'content-type': 'application/json' },
    ...(probe.body === undefined ? {} : { body: probe.body }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body.dump();
  return res.statusCode === 401;
}

/**
 * A pool the orchestrator launches itself (single host): an engine bound beyond loopback gets a
 * key for this launch unless one is configured. (A local Triton pool beyond loopback is refused
 * by config validation: it has no key and no guard there.)
 */
export function keyBeyondLoopback(
  pool: ResolvedPool,
  generate: () => string = generateEngineKey,
): ResolvedPool {
  if (pool.launch.apiKey !== undefined || !KEYED_ENGINES.has(pool.engine) || isLoopbackHost(pool.launch.host))
    return pool;
  return { ...pool, launch: { ...pool.launch, apiKey: generate() } };
}
