/**
 * Durable state behind one interface (SPEC §8, §9): embedded SQLite by default, PostgreSQL for
 * several orchestrator instances. One conformance suite runs against both.
 */
export interface ArtifactRecord {
  readonly tenant: string;
  /** Content address: `sha256:<hex>` of the RFC 8785 canonical JSON of `{kind, content, parent}`. */
  readonly id: string;
  readonly kind: string;
  /** `sha256:<hex>` of the canonical JSON of `content` alone. */
  readonly digest: string;
  readonly content: unknown;
  readonly parent: string | undefined;
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  readonly tags: readonly string[];
  readonly createdMs: number;
}

export interface ArtifactQuery {
  readonly tag?: string | undefined;
  /** Children of this artifact (lineage). */
  readonly parent?: string | undefined;
  readonly limit: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Stores an artifact; storing the same id again is idempotent: the first record stays, new
   * tags are added. `created` tells whether this call created it.
   */
  putArtifact(a: ArtifactRecord): Promise<{ record: ArtifactRecord; created: boolean }>;
  getArtifact(tenant: string, id: string): Promise<ArtifactRecord | undefined>;
  /** The tenant's artifacts, newest first, filtered by tag and/or parent. */
  listArtifacts(tenant: string, q: ArtifactQuery): Promise<ArtifactRecord[]>;
  /** Applied schema version (migrations are versioned in `migrations.ts`). */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}
