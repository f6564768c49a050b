import { createHash } from 'node:crypto';
import type { ResolvedApiKey } from '../config/resolved-config.js';
import type { Principal } from '../domain/submit.js';
import type { Scope } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { SecretSet } from '../util/redact.js';

/** The principal of a keyless local deployment (only allowed on loopback, SPEC §11). */
export const LOCAL_PRINCIPAL: Principal = {
  tenant: 'local',
  keyId: 'anonymous',
  scopes: ['data', 'control'],
};

/**
 * API-key authentication (SPEC §11, ORCH-3035): keys are compared by their SHA-256, so the
 * configuration never holds a usable secret; the key itself is never logged or echoed.
 */
export class Authenticator {
  readonly #byHash: ReadonlyMap<string, ResolvedApiKey>;
  readonly #secrets: SecretSet | undefined;

  /**
   * @param secrets learns each key that authenticates, so that it is scrubbed as a literal from
   *   then on, even where it is not a word of its own in an echoed value or a log line.
   */
  constructor(keys: readonly ResolvedApiKey[], secrets?: SecretSet) {
    this.#byHash = new Map(keys.map((k) => [k.sha256, k]));
    this.#secrets = secrets;
  }

  get enabled(): boolean {
    return this.#byHash.size > 0;
  }

  /**
   * The principal behind an `Authorization` header, checked for `scope`; with `poolId`, also
   * checked against the key's pool limit (`auth.keys[].pools`): 403 for a pool outside it, whether
   * or not that pool exists, so a limited key learns nothing of other pools.
   */
  authenticate(authorization: string | undefined, scope: Scope, poolId?: string): Principal {
    const key = this.#keyOf(authorization);
    if (!key) return LOCAL_PRINCIPAL;
    if (!key.scopes.includes(scope)) {
      throw new OrchError('FORBIDDEN', `API key '${key.id}' has no '${scope}' scope`);
    }
    if (poolId !== undefined && key.pools !== undefined && !key.pools.includes(poolId)) {
      throw new OrchError('FORBIDDEN', `API key '${key.id}' may not control pool '${poolId}'`);
    }
    return {
      tenant: key.tenant,
      keyId: key.id,
      // The data and control planes; `metrics` reads no tenant-owned state.
      scopes: key.scopes.filter((s): s is 'data' | 'control' => s !== 'metrics'),
    };
  }

  /**
   * Checks only that the request carries a known key (401 otherwise), before its body is read:
   * an unauthenticated client costs no body parsing. Scopes are the handler's check.
   */
  requireCredential(authorization: string | undefined): void {
    this.#keyOf(authorization);
  }

  /** The configured key behind the header; undefined when keys are off (keyless local). */
  #keyOf(authorization: string | undefined): ResolvedApiKey | undefined {
    if (!this.enabled) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match?.[1]) {
      throw new OrchError('UNAUTHORIZED', 'missing credential: send `Authorization: Bearer <api key>`', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    const key = this.#byHash.get(sha256Hex(match[1]));
    if (!key) {
      throw new OrchError('UNAUTHORIZED', 'invalid API key', {
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
    this.#secrets?.addLiteral(match[1]);
    return key;
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
