/**
 * The artifact registry (SPEC §9, ORCH-3097/3098): agents keep plans, summaries, diffs and traces
 * with lineage. Ids are content addresses — sha256 of the RFC 8785 canonical JSON of
 * `{kind, content, parent}` — so equal content gives an equal id and posting again is idempotent.
 * Tenants see only their own artifacts.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import { OrchError } from '../errors/orch-error.js';
import type { Clock } from '../domain/types.js';
import type { ArtifactRecord, Store } from '../persistence/store.js';

export const ARTIFACT_KINDS = ['plan', 'summary', 'diff', 'trace', 'other'] as const;

export interface ArtifactInput {
  readonly kind: (typeof ARTIFACT_KINDS)[number];
  readonly content: unknown;
  readonly tags?: readonly string[] | undefined;
  readonly parent?: string | undefined;
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
}

// The package is CommonJS with an ESM-style declaration: under nodenext the function is `default`.
type Canonicalize = (input: unknown) => string | undefined;
const canonicalize: Canonicalize =
  canonicalizeModule.default ?? (canonicalizeModule as unknown as Canonicalize);

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;

/** RFC 8785 canonical JSON; refuses values JSON cannot represent (NaN, Infinity). */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new OrchError('INVALID_PARAMS', 'content: must be a JSON value');
  return text;
}

export class ArtifactRegistry {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #maxBytes: number;

  constructor(store: Store, clock: Clock, maxBytes: number) {
    this.#store = store;
    this.#clock = clock;
    this.#maxBytes = maxBytes;
  }

  /** Stores (or finds) an artifact; `created` is false when the same content was stored before. */
  async put(tenant: string, input: ArtifactInput): Promise<{ record: ArtifactRecord; created: boolean }> {
    const content = canonicalJson(input.content);
    const bytes = Buffer.byteLength(content, 'utf8');
    if (bytes > this.#maxBytes)
      throw new OrchError(
        'PAYLOAD_TOO_LARGE',
        `content: ${bytes} bytes of canonical JSON exceed the limit of ${this.#maxBytes}`,
      );
    if (input.parent !== undefined && !(await this.#store.getArtifact(tenant, input.parent)))
      throw new OrchError('INVALID_PARAMS', `parent: artifact '${input.parent}' not found`);
    const id = sha256(
      canonicalJson({ kind: input.kind, content: input.content, parent: input.parent ?? null }),
    );
    return this.#store.putArtifact({
      tenant,
      id,
      kind: input.kind,
      digest: sha256(content),
      content: JSON.parse(content) as unknown,
      parent: input.parent,
      metadata: input.metadata,
      tags: [...new Set(input.tags ?? [])],
      createdMs: this.#clock.now(),
    });
  }

  async get(tenant: string, id: string): Promise<ArtifactRecord> {
    const a = await this.#store.getArtifact(tenant, id);
    if (!a) throw new OrchError('NOT_FOUND', `artifact '${id}' not found`);
    return a;
  }

  list(
    tenant: string,
    q: { tag?: string | undefined; parent?: string | undefined; limit?: number | undefined },
  ): Promise<ArtifactRecord[]> {
    return this.#store.listArtifacts(tenant, {
      tag: q.tag,
      parent: q.parent,
      limit: Math.min(1_000, q.limit ?? 100),
    });
  }
}
