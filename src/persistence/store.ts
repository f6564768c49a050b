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

export const LIFECYCLE_STATES = ['Draft', 'Active', 'Canary', 'Deprecated', 'Retired'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export interface CatalogRecord {
  readonly id: string;
  readonly source: string;
  /** Local file the entry resolved to. */
  readonly path: string;
  readonly digest: string;
  readonly state: LifecycleState;
  readonly tags: readonly string[];
  readonly signed: boolean;
  readonly verified: boolean;
  readonly keyId: string | undefined;
  /** The detached minisign signature, kept to verify again later. */
  readonly signature: string | undefined;
  readonly sbom: Readonly<Record<string, unknown>> | undefined;
  /** Canary (or promoted replacement) of this model id, with the share of new sessions. */
  readonly canaryOf?: string | undefined;
  readonly canaryPercent?: number | undefined;
  readonly createdMs: number;
  readonly updatedMs: number;
}

export interface StateChange {
  readonly atMs: number;
  readonly from: LifecycleState | undefined;
  readonly to: LifecycleState;
  readonly reason: string | undefined;
}

/** Where a journaled task stands: `running` once it was handed to an engine. */
export type TaskJournalState = 'queued' | 'running' | 'ended';

/** One accepted task in the journal (SPEC §17.1). */
export interface TaskJournalEntry {
  readonly taskId: string;
  readonly tenant: string;
  readonly poolId: string;
  /** Hash of the canonical form of the validated request: resubmissions are compared with it. */
  readonly bodyDigest: string;
  /** The accepted `TaskSpec`, as JSON-compatible data. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** The original acceptance answer (replayed to an identical resubmission). */
  readonly acceptance: Readonly<Record<string, unknown>>;
  readonly cost: number;
  readonly acceptedMs: number;
  /** Absolute deadline (clock ms). */
  readonly deadlineAtMs: number;
  readonly state: TaskJournalState;
  /** Times the task was taken back after a restart (0 until then). */
  readonly restarts?: number | undefined;
  /** How it ended (`{kind, code?}`), once ended. */
  readonly outcome?: Readonly<Record<string, unknown>> | undefined;
  readonly endedMs?: number | undefined;
}

/** One write of the journal; a batch of them commits in one transaction. */
export type TaskJournalOp =
  | { readonly op: 'accepted'; readonly entry: TaskJournalEntry }
  | { readonly op: 'running'; readonly taskId: string }
  | { readonly op: 'restarted'; readonly taskId: string; readonly restarts: number }
  | {
      readonly op: 'ended';
      readonly taskId: string;
      readonly outcome: Readonly<Record<string, unknown>>;
      readonly atMs: number;
    };

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
  /** Adds a catalog entry with its first history line; false when the id exists. */
  addModel(m: CatalogRecord, reason: string): Promise<boolean>;
  getModel(id: string): Promise<CatalogRecord | undefined>;
  listModels(): Promise<CatalogRecord[]>;
  /** Moves an entry to `to` (and records it) only if it is still in `from` (optimistic). */
  setModelState(
    id: string,
    from: LifecycleState,
    to: LifecycleState,
    atMs: number,
    reason: string | undefined,
  ): Promise<boolean>;
  modelHistory(id: string): Promise<StateChange[]>;
  /** Sets (or clears, with undefined) the canary relation of an entry. */
  setModelCanary(
    id: string,
    of: string | undefined,
    percent: number | undefined,
    atMs: number,
  ): Promise<void>;
  /** Records a verification outcome on the entry. */
  setModelVerified(id: string, verified: boolean, atMs: number): Promise<void>;
  /** Adds a finished turn's usage to the session's budget ledger. */
  addSessionUsage(
    tenant: string,
    sessionId: string,
    usage: { tokens: number; wallMs: number; cost: number },
    atMs: number,
  ): Promise<void>;
  getSessionUsage(
    tenant: string,
    sessionId: string,
  ): Promise<{ tokens: number; wallMs: number; cost: number } | undefined>;
  /** Applies the journal writes in order, in one transaction (group commit). */
  writeTaskJournal(ops: readonly TaskJournalOp[]): Promise<void>;
  /**
   * The journal as a restart needs it: every task not ended, and the `endedLimit` most recently
   * accepted ended ones (their ids stay remembered), oldest accepted first.
   */
  loadTaskJournal(endedLimit: number): Promise<TaskJournalEntry[]>;
  /** Deletes ended entries beyond the `keep` most recently accepted; returns how many. */
  pruneTaskJournal(keep: number): Promise<number>;
  /** Applied schema version (migrations are versioned in `migrations.ts`). */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}
