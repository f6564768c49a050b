/**
 * The one step every model load goes through (SPEC §8, §17 §8): local pools at start, every
 * reload, and every pool-managerd node. It settles which artifact a pool loads (a catalog id or
 * tag resolves to its entry's file) and, before each launch, hashes what is on disk — a file, or
 * a directory model's manifest — and checks it against the trust policy:
 *
 * - in the orchestrator, a model loaded by path must match a signed catalog entry by digest
 *   (and that entry's signature must verify against the bytes as they are now);
 * - on a node, which has no catalog of its own, the artifact must carry a signature by one of
 *   the node's trust roots: published next to it (`<path>.minisig`), or sent by the
 *   orchestrator with a reload to a catalog entry.
 *
 * Under `strict` anything else is refused: the pool stays unready with the cause, which is
 * logged and counted. Under `permissive` it loads with a warning, counted as
 * `allowed_unverified`. A digest that contradicts a pin, or nothing at the path, is refused
 * under both. The outcome per pool is kept for admission (`untrustedCause`).
 */
import { ConfigError } from '../config/config-error.js';
import type { ResolvedConfig, ResolvedPool } from '../config/resolved-config.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import type { CatalogRecord } from '../persistence/store.js';
import type { Logger } from '../util/logger.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  ArtifactVerifier,
  changedFiles,
  hashArtifact,
  signatureSidecar,
  type HashedArtifact,
  type Verification,
} from './artifact-verifier.js';
import type { CatalogService } from './catalog-service.js';
import { recordVerification } from './verification-record.js';

/** A pool's model as it will be loaded, and the catalog entry it came from (catalog ids and tags). */
export interface PreparedModel {
  readonly pool: ResolvedPool;
  readonly entry: CatalogRecord | undefined;
}

interface Verdict {
  readonly ok: boolean;
  readonly cause: string | undefined;
  /** The catalog entry the pool's bytes matched, whose later verifications still count. */
  readonly entryId: string | undefined;
}

export interface ModelPreparationOptions {
  readonly policy: 'strict' | 'permissive';
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  /** Checks signatures against the trust roots. */
  readonly verifier: ArtifactVerifier;
  /** The orchestrator's catalog; absent on a node, whose signatures are published or sent with reloads. */
  readonly catalog?: CatalogService | undefined;
}

/** What no policy lets through: nothing (usable) at the model path. */
const ALWAYS_REFUSED = new Set(['missing_file']);

export class ModelPreparation {
  readonly #o: ModelPreparationOptions;
  readonly #verdicts = new Map<string, Verdict>();
  /** Signatures the orchestrator sent with reloads (node), by the digest they sign. */
  readonly #offered = new Map<string, string>();

  constructor(o: ModelPreparationOptions) {
    this.#o = o;
  }

  /** The orchestrator's preparation: loads by path must match its catalog's signed entries. */
  static forOrchestrator(
    config: ResolvedConfig,
    catalog: CatalogService,
    metrics: OrchMetrics,
    logger: Logger,
  ): ModelPreparation {
    return new ModelPreparation({
      policy: config.catalog.trustPolicy,
      metrics,
      logger,
      verifier: catalog.verifier,
      catalog,
    });
  }

  /** A node's preparation: its own `catalog.trust_policy` and `catalog.trust_roots`. */
  static async forNode(
    config: ResolvedConfig,
    metrics: OrchMetrics,
    logger: Logger,
  ): Promise<ModelPreparation> {
    return new ModelPreparation({
      policy: config.catalog.trustPolicy,
      metrics,
      logger,
      verifier: await ArtifactVerifier.load(config.catalog.trustRoots),
    });
  }

  get policy(): 'strict' | 'permissive' {
    return this.#o.policy;
  }

  /**
   * Which artifact the pool loads. A native pool that names its model by catalog id (no path)
   * serves that entry's file; `tag:<tag>` resolves once, deterministically, to one entry whose
   * digest the pool then pins. A ConfigError when the entry is missing or Retired.
   */
  async resolve(pool: ResolvedPool): Promise<PreparedModel> {
    if (pool.launch.worker !== 'native' || pool.model.path !== '') return { pool, entry: undefined };
    const catalog = this.#o.catalog;
    const byTag = pool.model.id.startsWith('tag:');
    const entry = byTag ? await catalog?.resolveRef(pool.model.id) : await catalog?.find(pool.model.id);
    if (!entry)
      throw new ConfigError([
        `pools: pool '${pool.id}' names no model.path and the catalog has no model '${pool.model.id}'`,
      ]);
    if (byTag)
      this.#o.logger.info(
        {
          event: 'catalog.resolved',
          pool_id: pool.id,
          ref: pool.model.id,
          model_id: entry.id,
          digest: entry.digest,
        },
        `pool ${pool.id}: ${pool.model.id} resolved to ${entry.id}@${entry.digest}`,
      );
    if (entry.state === 'Retired')
      throw new ConfigError([
        `pools: pool '${pool.id}' serves catalog model '${entry.id}', which is Retired`,
      ]);
    return { pool: { ...pool, model: { ...pool.model, path: entry.path, digest: entry.digest } }, entry };
  }

  /** A node accepts, for the artifact with `digest`, a signature the orchestrator sent with a reload. */
  offerSignature(digest: string, signatureText: string): void {
    this.#offered.set(digest, signatureText);
  }

  /**
   * Verifies the pool's model before launch: the refusal cause, or undefined when it may load.
   * A pool that loads nothing (a simulated pool without a model path) has nothing to verify.
   */
  async verify(prepared: PreparedModel): Promise<string | undefined> {
    const { pool, entry } = prepared;
    if (pool.model.path === '') return undefined;
    const strict = this.#o.policy === 'strict';
    let v: Verification;
    let entryId = entry?.id;
    if (entry && this.#o.catalog) {
      // A catalog entry is verified as itself: its recorded state follows the bytes on disk.
      v = await this.#o.catalog.verify(entry.id, {
        phase: 'load',
        engine: pool.engine,
        poolId: pool.id,
        allowUnverified: !strict,
      });
    } else {
      const found = await this.#verifyPath(pool);
      v = found.v;
      entryId = found.entryId;
      recordVerification(this.#o.metrics, this.#o.logger, {
        v,
        phase: 'load',
        engine: pool.engine,
        policy: this.#o.policy,
        allowed: !v.ok && !strict && !ALWAYS_REFUSED.has(v.reason),
        modelId: entryId,
        poolId: pool.id,
        path: pool.model.path,
      });
    }
    const what = entry ? `model '${entry.id}'` : `${pool.model.path}`;
    const cause = v.ok
      ? undefined
      : `catalog: ${what} failed verification before load (${v.reason}${v.detail === undefined ? '' : `: ${v.detail}`})` +
        (strict && !ALWAYS_REFUSED.has(v.reason) ? '; refused by the strict trust policy' : '');
    this.#verdicts.set(pool.id, { ok: v.ok, cause, entryId });
    if (cause === undefined) return undefined;
    if (strict || ALWAYS_REFUSED.has(v.reason)) return cause;
    this.#o.logger.warn(
      {
        event: 'catalog.permissive_load',
        pool_id: pool.id,
        engine: pool.engine,
        reason: v.reason,
        path: pool.model.path,
      },
      `pool ${pool.id}: ${cause}; loading anyway (permissive trust policy)`,
    );
    return undefined;
  }

  /**
   * Why admission refuses tasks for this pool's model under `strict` (UNTRUSTED_ARTIFACT): its
   * last load failed verification, or the catalog entry it serves failed a later verification.
   * Undefined when it is trusted, not yet verified, or the policy is permissive.
   */
  untrustedCause(poolId: string, modelId: string): string | undefined {
    if (this.#o.policy !== 'strict') return undefined;
    const verdict = this.#verdicts.get(poolId);
    if (verdict && !verdict.ok) return verdict.cause;
    const id = verdict?.entryId ?? modelId;
    return this.#o.catalog?.verifiedOf(id) === false
      ? `catalog: model '${id}' failed its last verification`
      : undefined;
  }

  /** A model loaded by path: the signed statement its digest matches (catalog entry, or published signature). */
  async #verifyPath(pool: ResolvedPool): Promise<{ v: Verification; entryId: string | undefined }> {
    const path = pool.model.path;
    const a = await hashArtifact(path).catch((err: unknown) => {
      this.#o.logger.warn(
        { event: 'catalog.unreadable', path, err: (err as Error).message },
        'model unreadable',
      );
      return undefined;
    });
    const none = { entryId: undefined };
    if (a === undefined)
      return { v: { ok: false, reason: 'missing_file', digest: undefined, keyId: undefined }, ...none };
    if (pool.model.digest !== undefined && pool.model.digest !== a.digest)
      return {
        v: {
          ok: false,
          reason: 'digest_mismatch',
          digest: a.digest,
          keyId: undefined,
          detail: (await changedFiles(path, a)) ?? `expected ${pool.model.digest}`,
        },
        ...none,
      };
    return this.#o.catalog
      ? this.#matchCatalog(pool, a)
      : { v: await this.#matchSignature(path, a), ...none };
  }

  /** Orchestrator: a signed, not Retired catalog entry with the same digest whose signature verifies now. */
  async #matchCatalog(
    pool: ResolvedPool,
    a: HashedArtifact,
  ): Promise<{ v: Verification; entryId: string | undefined }> {
    const catalog = this.#o.catalog!;
    const candidates = (await catalog.findByDigest(a.digest))
      .filter((m) => m.state !== 'Retired' && m.signature !== undefined)
      // The entry the pool is named after first, then those that verified last time.
      .sort(
        (x, y) =>
          Number(y.id === pool.model.id) - Number(x.id === pool.model.id) ||
          Number(y.verified) - Number(x.verified),
      );
    let first: Verification | undefined;
    for (const m of candidates) {
      const v = await this.#o.verifier.check(a, m.signature ?? '');
      if (v.ok) return { v, entryId: m.id };
      first ??= v;
    }
    if (first) return { v: first, entryId: undefined };
    // Named after an entry whose bytes are different: say which files changed, where that is known.
    const named = await catalog.find(pool.model.id);
    if (named && named.digest !== a.digest)
      return {
        v: {
          ok: false,
          reason: 'digest_mismatch',
          digest: a.digest,
          keyId: undefined,
          detail:
            (await changedFiles(pool.model.path, a)) ??
            `catalog entry '${named.id}' has digest ${named.digest}`,
        },
        entryId: undefined,
      };
    return {
      v: {
        ok: false,
        reason: 'uncatalogued',
        digest: a.digest,
        keyId: undefined,
        detail: `no signed catalog entry has digest ${a.digest} (add it with \`llorch catalog add\`)`,
      },
      entryId: undefined,
    };
  }

  /** Node: a signature sent with a reload for this digest, else the one published next to the artifact. */
  async #matchSignature(path: string, a: HashedArtifact): Promise<Verification> {
    const sidecar = signatureSidecar(path);
    const text =
      this.#offered.get(a.digest) ?? (existsSync(sidecar) ? await readFile(sidecar, 'utf8') : undefined);
    if (text === undefined)
      return {
        ok: false,
        reason: 'unsigned',
        digest: a.digest,
        keyId: undefined,
        detail: `no signature for ${a.digest} (none sent with the reload, none at ${sidecar})`,
      };
    return this.#o.verifier.check(a, text);
  }
}

const fallbacks = new WeakMap<object, ModelPreparation>();

/**
 * The preparation a pool factory uses: the one it was given, else one over its catalog (kept
 * per factory, so admission sees the verdicts of every load). Without a catalog, only published
 * signatures count and no key is trusted: under `strict` nothing unsigned loads.
 */
export function preparationFor(o: {
  readonly config: ResolvedConfig;
  readonly metrics: OrchMetrics;
  readonly logger: Logger;
  readonly catalog?: CatalogService | undefined;
  readonly preparation?: ModelPreparation | undefined;
}): ModelPreparation {
  if (o.preparation) return o.preparation;
  let p = fallbacks.get(o);
  if (!p) {
    p = o.catalog
      ? ModelPreparation.forOrchestrator(o.config, o.catalog, o.metrics, o.logger)
      : new ModelPreparation({
          policy: o.config.catalog.trustPolicy,
          metrics: o.metrics,
          logger: o.logger,
          verifier: new ArtifactVerifier([]),
        });
    fallbacks.set(o, p);
  }
  return p;
}
