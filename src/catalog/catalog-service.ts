/**
 * The model catalog (SPEC §8): which bytes a pool may serve. Ingest resolves the source, hashes
 * the file, and verifies its minisign signature against the configured trust roots; under
 * `strict` an unsigned or unverifiable artifact is refused (UNTRUSTED_ARTIFACT), under
 * `permissive` it is logged and kept unverified. Lifecycle moves only along allowed transitions,
 * each recorded. Every verification is logged and counted.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, utimes } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/resolved-config.js';
import type { Clock, Engine } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import {
  LIFECYCLE_STATES,
  type CatalogRecord,
  type LifecycleState,
  type StateChange,
  type Store,
} from '../persistence/store.js';
import type { Logger } from '../util/logger.js';
import { ArtifactVerifier, signatureSidecar, type Verification } from './artifact-verifier.js';
import { fetchToFile, hfUrl } from './fetcher.js';
import { recordVerification } from './verification-record.js';

export type { Verification, VerificationReason } from './artifact-verifier.js';

/** Where a verification happens, for its log line and its `engine` label. */
export interface VerificationContext {
  readonly phase: 'verify' | 'load';
  readonly engine: Engine | 'any';
  readonly poolId?: string | undefined;
  /** True when the load proceeds with an unverified artifact (permissive), unless nothing is there to load. */
  readonly allowUnverified?: boolean | undefined;
}

export interface CatalogAddRequest {
  readonly id: string;
  readonly source: string;
  readonly digest?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  /** Detached minisign signature text; else `<file>.minisig` next to the artifact is used. */
  readonly signature?: string | undefined;
  readonly sbom?: Readonly<Record<string, unknown>> | undefined;
}

/** Allowed lifecycle transitions (ORCH-3069..3074). */
export const TRANSITIONS: Readonly<Record<LifecycleState, readonly LifecycleState[]>> = {
  Draft: ['Active', 'Retired'],
  Active: ['Canary', 'Deprecated'],
  Canary: ['Active', 'Deprecated'],
  Deprecated: ['Active', 'Retired'],
  Retired: [],
};

export function sourceKind(source: string): 'path' | 'file' | 'https' | 'hf' {
  if (source.startsWith('file:')) return 'file';
  if (source.startsWith('https:')) return 'https';
  if (source.startsWith('hf:')) return 'hf';
  return 'path';
}

/**
 * A `file:` source as a local path. A URL naming another host, or not a file URL at all, is the
 * client's mistake (400 naming `source`), never a 500 from `fileURLToPath`.
 */
function localFilePath(source: string): string {
  try {
    return fileURLToPath(source);
  } catch (err) {
    throw new OrchError(
      'INVALID_PARAMS',
      `source: '${source}' is not a local file URL (use file:///absolute/path): ${(err as Error).message}`,
    );
  }
}

export class CatalogService {
  readonly #store: Store;
  readonly #config: ResolvedConfig;
  readonly #metrics: OrchMetrics;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #verifier: ArtifactVerifier;
  /** States by model id, for admission's synchronous checks. */
  readonly #states = new Map<string, LifecycleState>();
  /** Whether each entry passed its last verification, for admission's synchronous trust check. */
  readonly #verified = new Map<string, boolean>();
  /** Canary (or promoted replacement) by the model id it stands in for. */
  readonly #canaries = new Map<string, { id: string; percent: number }>();

  private constructor(
    store: Store,
    config: ResolvedConfig,
    metrics: OrchMetrics,
    logger: Logger,
    clock: Clock,
    verifier: ArtifactVerifier,
  ) {
    this.#store = store;
    this.#config = config;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#clock = clock;
    this.#verifier = verifier;
  }

  static async open(
    store: Store,
    config: ResolvedConfig,
    metrics: OrchMetrics,
    logger: Logger,
    clock: Clock,
  ): Promise<CatalogService> {
    const verifier = await ArtifactVerifier.load(config.catalog.trustRoots);
    const svc = new CatalogService(store, config, metrics, logger, clock, verifier);
    for (const m of await store.listModels()) {
      svc.#track(m.id, m.state);
      svc.#verified.set(m.id, m.verified);
      if (m.canaryOf !== undefined)
        svc.#canaries.set(m.canaryOf, { id: m.id, percent: m.canaryPercent ?? 0 });
    }
    return svc;
  }

  /**
   * The model a new session asking for `modelRef` goes to: its canary for the configured share of
   * sessions (decided by a hash of the session id, so a session always lands the same way), its
   * promoted replacement for all of them, else `modelRef` itself.
   */
  routeFor(modelRef: string, sessionId: string): string {
    const c = this.#canaries.get(modelRef);
    if (!c) return modelRef;
    const state = this.#states.get(c.id);
    if (state !== 'Canary' && state !== 'Active') return modelRef;
    const bucket = createHash('sha256').update(sessionId).digest().readUInt32BE(0) % 10_000;
    return bucket < c.percent * 100 ? c.id : modelRef;
  }

  /** Current lifecycle state of a model id (undefined when not in the catalog). */
  stateOf(id: string): LifecycleState | undefined {
    return this.#states.get(id);
  }

  #track(id: string, state: LifecycleState): void {
    this.#states.set(id, state);
    for (const s of LIFECYCLE_STATES)
      this.#metrics.set('model_state', { model_id: id, state: s }, s === state ? 1 : 0);
  }

  /** The local file of a source: downloaded into the cache for `https:` / `hf:` (with its signature when published). */
  async #pathOf(
    id: string,
    source: string,
    pinned: string | undefined,
  ): Promise<{ path: string; signature: string | undefined }> {
    const kind = sourceKind(source);
    if (!this.#config.catalog.allowedSources.includes(kind))
      throw new OrchError(
        'UNTRUSTED_ARTIFACT',
        `source: '${kind}' sources are not allowed by the trust policy (allowed: ${this.#config.catalog.allowedSources.join(', ')})`,
      );
    if (kind === 'path' || kind === 'file')
      return { path: kind === 'file' ? localFilePath(source) : resolve(source), signature: undefined };
    const url = kind === 'hf' ? hfUrl(source, this.#config.catalog.hfEndpoint) : source;
    const name = basename(new URL(url).pathname) || 'model';
    const dest = join(this.#config.catalog.cacheDir, id.replace(/[^A-Za-z0-9._-]/g, '_'), name);
    try {
      await fetchToFile(url, dest, {
        expectedDigest: pinned,
        onProgress: (bytes, total) =>
          this.#logger.debug({ event: 'catalog.download', model_id: id, bytes, total }, 'downloading'),
      });
    } catch (err) {
      throw new OrchError('INVALID_PARAMS', `source: download of ${url} failed: ${(err as Error).message}`);
    }
    const res = await fetch(`${url}.minisig`).catch(() => undefined);
    const signature = res?.ok === true ? await res.text() : undefined;
    return { path: dest, signature };
  }

  /** Models no pool serves are evicted from the download cache, least recently used first. */
  async #enforceQuota(keep: string): Promise<void> {
    const quota = this.#config.catalog.cacheQuotaBytes;
    if (quota === undefined) return;
    const cached = (await this.#store.listModels()).filter(
      (m) => m.path.startsWith(this.#config.catalog.cacheDir) && existsSync(m.path),
    );
    const sized = await Promise.all(cached.map(async (m) => ({ m, st: await stat(m.path) })));
    let total = sized.reduce((n, x) => n + x.st.size, 0);
    const inUse = new Set(this.#config.pools.map((p) => p.model.id));
    for (const { m, st } of sized.sort((a, b) => a.st.mtimeMs - b.st.mtimeMs)) {
      if (total <= quota) break;
      if (m.id === keep || inUse.has(m.id)) continue;
      await rm(dirname(m.path), { recursive: true, force: true });
      total -= st.size;
      this.#logger.info(
        { event: 'catalog.evicted', model_id: m.id, bytes: st.size },
        `catalog: evicted ${m.id} from the model cache (quota ${quota} bytes)`,
      );
    }
  }

  /** Digest and signature check of the bytes on disk: a model file, or a model directory's manifest. */
  verifyFile(
    path: string,
    signatureText: string | undefined,
    pinned: string | undefined,
  ): Promise<Verification> {
    return this.#verifier.verify(path, signatureText, pinned);
  }

  /** Checks signatures against this catalog's trust roots (model preparation uses it before loads). */
  get verifier(): ArtifactVerifier {
    return this.#verifier;
  }

  #record(id: string, v: Verification, phase: 'ingest' | 'verify' | 'load', ctx?: VerificationContext): void {
    recordVerification(this.#metrics, this.#logger, {
      v,
      phase,
      engine: ctx?.engine ?? 'any',
      policy: this.#config.catalog.trustPolicy,
      allowed: (ctx?.allowUnverified ?? false) && !v.ok && v.reason !== 'missing_file',
      modelId: id,
      poolId: ctx?.poolId,
    });
  }

  async add(req: CatalogAddRequest): Promise<CatalogRecord> {
    if (await this.#store.getModel(req.id))
      throw new OrchError('CONFLICT', `catalog: model '${req.id}' already exists`);
    const fetched = await this.#pathOf(req.id, req.source, req.digest);
    const path = fetched.path;
    const signatureText = req.signature ?? fetched.signature;
    const v = await this.verifyFile(path, signatureText, req.digest);
    const permissive = this.#config.catalog.trustPolicy === 'permissive';
    this.#record(req.id, v, 'ingest', {
      phase: 'verify',
      engine: 'any',
      allowUnverified: permissive && v.reason !== 'digest_mismatch',
    });
    if (v.reason === 'missing_file')
      throw new OrchError('INVALID_PARAMS', `source: no model file or directory at ${path}`);
    if (v.reason === 'digest_mismatch')
      throw new OrchError(
        'UNTRUSTED_ARTIFACT',
        `digest: the file hashes to ${v.digest ?? '?'}, not the pinned ${req.digest ?? '?'}`,
      );
    if (!v.ok && this.#config.catalog.trustPolicy === 'strict')
      throw new OrchError(
        'UNTRUSTED_ARTIFACT',
        `catalog: '${req.id}' is refused by the strict trust policy (${v.reason})`,
      );
    const now = this.#clock.now();
    const record: CatalogRecord = {
      id: req.id,
      source: req.source,
      path,
      digest: v.digest ?? '',
      state: 'Draft',
      tags: [...new Set(req.tags ?? [])],
      signed: v.reason !== 'unsigned',
      verified: v.ok,
      keyId: v.keyId,
      signature:
        signatureText ??
        (existsSync(signatureSidecar(path)) ? await readFile(signatureSidecar(path), 'utf8') : undefined),
      sbom: req.sbom,
      createdMs: now,
      updatedMs: now,
    };
    if (!(await this.#store.addModel(record, `ingested (${v.reason})`)))
      throw new OrchError('CONFLICT', `catalog: model '${req.id}' already exists`);
    this.#track(record.id, record.state);
    this.#verified.set(record.id, record.verified);
    await this.#enforceQuota(record.id);
    return record;
  }

  /** Whether an entry passed its last verification (undefined when not in the catalog). */
  verifiedOf(id: string): boolean | undefined {
    return this.#verified.get(id);
  }

  /** Entries whose digest is `digest` (a file's SHA-256, or a directory model's manifest digest). */
  async findByDigest(digest: string): Promise<CatalogRecord[]> {
    return (await this.list()).filter((m) => m.digest === digest);
  }

  /** The entry for a model id, if the catalog has one. */
  find(id: string): Promise<CatalogRecord | undefined> {
    return this.#store.getModel(id);
  }

  get trustPolicy(): 'strict' | 'permissive' {
    return this.#config.catalog.trustPolicy;
  }

  /** Adds the entries that are missing and makes them Active (bootstrapping a deployment). */
  async ensure(entries: readonly CatalogAddRequest[]): Promise<void> {
    for (const e of entries) {
      if (!(await this.find(e.id))) await this.add(e);
      const m = await this.get(e.id);
      if (m.state === 'Draft') await this.setState(e.id, 'Active', 'bootstrap');
    }
  }

  async get(id: string): Promise<CatalogRecord> {
    const m = await this.#store.getModel(id);
    if (!m) throw new OrchError('NOT_FOUND', `catalog: model '${id}' not found`);
    return m;
  }

  list(): Promise<CatalogRecord[]> {
    return this.#store.listModels();
  }

  /** The entry's lifecycle changes, oldest first (its creation first). */
  history(id: string): Promise<StateChange[]> {
    return this.#store.modelHistory(id);
  }

  /** Verifies the bytes on disk again (before load, or on demand). */
  async verify(id: string, ctx?: VerificationContext): Promise<Verification> {
    const m = await this.get(id);
    const v = await this.verifyFile(m.path, m.signature, m.digest);
    this.#record(id, v, ctx?.phase ?? 'verify', ctx);
    this.#verified.set(id, v.ok);
    // Verification precedes every load: it marks the file recently used for the cache's LRU.
    if (existsSync(m.path)) await utimes(m.path, new Date(), new Date()).catch(() => undefined);
    await this.#store.setModelVerified(id, v.ok, this.#clock.now());
    return v;
  }

  /**
   * Resolves a reference to one immutable entry: an id, `id@sha256:<hex>` (the digest must
   * match), or `tag:<tag>` — among entries carrying the tag, serving states first (Active,
   * Canary, then Deprecated, Draft), then the newest, then the smallest id: the same catalog
   * always resolves the same reference to the same digest.
   */
  async resolveRef(ref: string): Promise<CatalogRecord> {
    if (ref.startsWith('tag:')) {
      const tag = ref.slice('tag:'.length);
      const rank: Readonly<Record<LifecycleState, number>> = {
        Active: 0,
        Canary: 1,
        Deprecated: 2,
        Draft: 3,
        Retired: 9,
      };
      const candidates = (await this.list())
        .filter((m) => m.tags.includes(tag) && m.state !== 'Retired')
        .sort((a, b) => rank[a.state] - rank[b.state] || b.createdMs - a.createdMs || (a.id < b.id ? -1 : 1));
      const first = candidates[0];
      if (!first) throw new OrchError('NOT_FOUND', `catalog: no model carries tag '${tag}'`);
      return first;
    }
    const [id = '', digest] = ref.split('@');
    const m = await this.get(id);
    if (digest !== undefined && digest !== m.digest)
      throw new OrchError('NOT_FOUND', `catalog: '${id}' has digest ${m.digest}, not ${digest}`);
    return m;
  }

  /** Called after every state change (drains and unloads pools serving the model). */
  onStateChange:
    | ((id: string, from: LifecycleState, to: LifecycleState, deadlineMs: number | undefined) => void)
    | undefined;

  async setState(
    id: string,
    to: LifecycleState,
    reason?: string,
    deadlineMs?: number,
    canary?: { of: string; percent: number },
  ): Promise<CatalogRecord> {
    const m = await this.get(id);
    if (to === 'Canary') {
      if (!canary) throw new OrchError('INVALID_PARAMS', 'canary_of and percent: required with state Canary');
      if (canary.of === id)
        throw new OrchError('INVALID_PARAMS', 'canary_of: a model cannot be its own canary');
      await this.get(canary.of);
    }
    if (!TRANSITIONS[m.state].includes(to))
      throw new OrchError(
        'CONFLICT',
        `catalog: '${id}' cannot go from ${m.state} to ${to} (allowed: ${TRANSITIONS[m.state].join(', ') || 'none'})`,
      );
    if (!(await this.#store.setModelState(id, m.state, to, this.#clock.now(), reason)))
      throw new OrchError('CONFLICT', `catalog: '${id}' changed state concurrently; read it again`, {
        retriable: true,
      });
    this.#track(id, to);
    this.#logger.info(
      { event: 'catalog.state', model_id: id, from: m.state, to },
      `catalog: ${id} ${m.state} → ${to}`,
    );
    await this.#canaryEffects(m, to, canary);
    this.onStateChange?.(id, m.state, to, deadlineMs);
    return this.get(id);
  }

  /** Canary routing follows the lifecycle: start, promote (one action), roll back (one action). */
  async #canaryEffects(
    m: CatalogRecord,
    to: LifecycleState,
    canary: { of: string; percent: number } | undefined,
  ): Promise<void> {
    const now = this.#clock.now();
    if (to === 'Canary' && canary) {
      await this.#store.setModelCanary(m.id, canary.of, canary.percent, now);
      this.#canaries.set(canary.of, { id: m.id, percent: canary.percent });
    } else if (to === 'Active' && m.state === 'Canary' && m.canaryOf !== undefined) {
      // Promotion: every new session for the old model goes to this one; the old one is Deprecated.
      await this.#store.setModelCanary(m.id, m.canaryOf, 100, now);
      this.#canaries.set(m.canaryOf, { id: m.id, percent: 100 });
      const old = this.#states.get(m.canaryOf);
      if (old !== undefined && TRANSITIONS[old].includes('Deprecated'))
        await this.setState(m.canaryOf, 'Deprecated', `replaced by ${m.id}`);
    } else if (m.state === 'Canary' && to === 'Deprecated' && m.canaryOf !== undefined) {
      // Rollback: no new session goes to the canary any more.
      await this.#store.setModelCanary(m.id, undefined, undefined, now);
      if (this.#canaries.get(m.canaryOf)?.id === m.id) this.#canaries.delete(m.canaryOf);
    }
  }
}
