/**
 * What `POST /v1/pools/{id}/reload {new_model_ref}` loads (SPEC §6, §17 §8). A reference is a
 * catalog id, `id@sha256:<hex>`, `tag:<tag>` or a bare digest `sha256:<hex>`, resolved to one
 * immutable entry whose digest the pool then pins (and verifies again before launch). A host
 * path or `file:` URL is refused under `strict` — `403 UNTRUSTED_ARTIFACT` at the control API,
 * before anything is drained — and allowed, with a warning, under `permissive`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedPool } from '../config/resolved-config.js';
import { OrchError } from '../errors/orch-error.js';
import type { CatalogRecord } from '../persistence/store.js';
import type { Logger } from '../util/logger.js';
import type { CatalogService } from './catalog-service.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * A reference that can only be a host path: a `file:` URL, or an absolute, `./`, `../` or `~`
 * path. Anything else is looked up in the catalog first (ids may contain `/`).
 */
export function isHostPath(ref: string): boolean {
  return ref.startsWith('file:') || /^(\/|\.\.?(\/|$)|~)/.test(ref);
}

/** `new_model_ref` as a path on the pool's host (a `file:` URL or a path). */
export function hostPathOf(ref: string): string {
  return ref.startsWith('file:') ? fileURLToPath(ref) : resolve(ref);
}

export interface ReloadTargetOptions {
  readonly catalog: CatalogService;
  readonly logger: Logger;
}

/** Resolves a reload reference for `pool` to the model it will load; throws the typed refusal. */
export async function resolveReloadTarget(
  o: ReloadTargetOptions,
  pool: ResolvedPool,
  ref: string,
): Promise<ResolvedPool['model']> {
  const strict = o.catalog.trustPolicy === 'strict';
  const where = { engine: pool.engine, poolId: pool.id };
  const entry = isHostPath(ref) ? undefined : await find(o.catalog, ref);
  if (entry === undefined) {
    // Not a catalog reference: a host path, allowed only by the permissive policy.
    const path = hostPathOf(ref);
    if (strict && !isHostPath(ref) && !existsSync(path))
      throw new OrchError('NOT_FOUND', `new_model_ref: catalog model '${ref}' not found`, where);
    if (strict)
      throw new OrchError(
        'UNTRUSTED_ARTIFACT',
        `new_model_ref: '${ref}' is a host path; under the strict trust policy a reload names a ` +
          'catalog id, tag:<tag> or sha256:<digest> of a signed entry',
        where,
      );
    o.logger.warn(
      { event: 'catalog.untrusted_reload', pool_id: pool.id, ref, path, policy: 'permissive' },
      `pool ${pool.id}: reload to host path ${path}, not a catalog entry; allowed by the permissive trust policy`,
    );
    return { ...pool.model, path, digest: undefined };
  }
  if (entry.state === 'Retired')
    throw new OrchError('CONFLICT', `new_model_ref: catalog model '${entry.id}' is Retired`, where);
  if (strict && !entry.verified)
    throw new OrchError(
      'UNTRUSTED_ARTIFACT',
      `new_model_ref: catalog model '${entry.id}' is not verified; the strict trust policy refuses it`,
      where,
    );
  o.logger.info(
    { event: 'catalog.resolved', pool_id: pool.id, ref, model_id: entry.id, digest: entry.digest },
    `pool ${pool.id}: reload target ${ref} resolved to ${entry.id}@${entry.digest}`,
  );
  return { ...pool.model, path: entry.path, digest: entry.digest };
}

/** The entry a catalog reference names; undefined when the catalog has none. */
async function find(catalog: CatalogService, ref: string): Promise<CatalogRecord | undefined> {
  if (DIGEST.test(ref)) {
    const rank = (m: CatalogRecord) => (m.state === 'Retired' ? 1 : 0);
    const all = (await catalog.findByDigest(ref)).sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1));
    if (all[0] === undefined)
      throw new OrchError('NOT_FOUND', `new_model_ref: no catalog model has digest ${ref}`);
    return all[0];
  }
  try {
    return await catalog.resolveRef(ref);
  } catch (err) {
    // A plain name the catalog lacks may still be a relative host path; tags and pins may not.
    const plain = !ref.startsWith('tag:') && !ref.includes('@');
    if (err instanceof OrchError && err.code === 'NOT_FOUND' && plain) return undefined;
    throw err;
  }
}
