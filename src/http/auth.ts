import { createHash } from 'node:crypto';
import type { ResolvedApiKey } from '../config/resolved-config.js';
import type { Principal } from '../domain/submit.js';
import type { Scope } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';

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

  constructor(keys: readonly ResolvedApiKey[]) {
    this.#byHash = new Map(keys.map((k) => [k.sha256, k]));
  }

  get enabled(): boolean {
    return this.#byHash.size > 0;
  }

  /** The principal behind an `Authorization` header, checked for `scope`. */
  authenticate(authorization: string | undefined, scope: Scope): Principal {
    if (!this.enabled) return LOCAL_PRINCIPAL;
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
    if (!key.scopes.includes(scope)) {
      throw new OrchError('FORBIDDEN', `API key '${key.id}' has no '${scope}' scope`);
    }
    return { tenant: key.tenant, keyId: key.id, scopes: key.scopes };
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
