/**
 * The engine API key of a pool (SPEC §11, §17 §11: keys from the file, a file or the environment)
 * and the rule behind it: an engine bound beyond loopback is never open without a credential.
 */
import { readFileSync } from 'node:fs';
import { ENGINES, type Engine } from '../domain/types.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import type { RawPool } from './schema.js';

export interface EngineKeyContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly toPath: (p: string) => string;
  /** True for a pool-managerd config (`node:` set): its guard can front keyless engines. */
  readonly isNode: boolean;
  readonly isLoopback: (host: string) => boolean;
}

/** Engines that take an API key of their own (their driver's `apiKey`; see `src/nodes/engine-credentials.ts`). */
export const KEYED_ENGINES: ReadonlySet<Engine> = new Set(
  ENGINES.filter((e) => ENGINE_DRIVERS[e].apiKey !== undefined),
);

/** The configured key of `p` (inline, file or environment), pushing a problem for each field that cannot be honoured. */
export function resolveEngineKey(
  p: RawPool,
  at: string,
  ctx: EngineKeyContext,
  problems: string[],
): string | undefined {
  const l = p.launch;
  const given = (['api_key', 'api_key_file', 'api_key_env'] as const).filter((f) => l?.[f] !== undefined);
  if (given.length > 1) {
    problems.push(`${at}.launch.${given[1] ?? ''}: give one of api_key, api_key_file, api_key_env`);
    return undefined;
  }
  const host = l?.host ?? '127.0.0.1';
  const name = ENGINE_DRIVERS[p.engine].displayName;
  if (!KEYED_ENGINES.has(p.engine) && p.hosts === undefined) {
    // An engine without an API key (Triton's HTTP endpoint takes none): beyond loopback only
    // pool-managerd's guard can put a credential in front of it, so a local pool must stay on loopback.
    if (given[0] !== undefined && !ctx.isNode)
      problems.push(
        `${at}.launch.${given[0]}: ${name} has no API key; only a pool-managerd node (its engine guard) takes one`,
      );
    if (!ctx.isNode && !ctx.isLoopback(host))
      problems.push(
        `${at}.launch.host: '${host}' is not a loopback address, and ${name} has no API key: bind it to 127.0.0.1, or run the pool on a pool-managerd node, which guards it with a key`,
      );
  }
  if (l?.api_key !== undefined) return l.api_key;
  if (l?.api_key_env !== undefined) {
    const v = ctx.env[l.api_key_env]?.trim();
    if (v === undefined || v === '') {
      problems.push(`${at}.launch.api_key_env: $${l.api_key_env} is not set or empty`);
      return undefined;
    }
    return v;
  }
  if (l?.api_key_file !== undefined) {
    const path = ctx.toPath(l.api_key_file);
    let v: string;
    try {
      v = readFileSync(path, 'utf8').trim();
    } catch (err) {
      problems.push(
        `${at}.launch.api_key_file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
      return undefined;
    }
    if (v === '') {
      problems.push(`${at}.launch.api_key_file: ${path} is empty`);
      return undefined;
    }
    return v;
  }
  return undefined;
}
