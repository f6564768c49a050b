import type {
  ArtifactRecord,
  CatalogRecord,
  LifecycleState,
  StateChange,
  TaskJournalEntry,
  TaskJournalState,
} from './store.js';

/** A row of `artifacts` as both drivers return it (BIGINT may arrive as string or bigint). */
export interface ArtifactRow {
  tenant: string;
  id: string;
  kind: string;
  digest: string;
  content: string;
  parent: string | null;
  metadata: string | null;
  created_ms: number | string | bigint;
}

export function toRecord(row: ArtifactRow, tags: readonly string[]): ArtifactRecord {
  return {
    tenant: row.tenant,
    id: row.id,
    kind: row.kind,
    digest: row.digest,
    content: JSON.parse(row.content) as unknown,
    parent: row.parent ?? undefined,
    metadata: row.metadata === null ? undefined : (JSON.parse(row.metadata) as Record<string, unknown>),
    tags: [...tags].sort(),
    createdMs: Number(row.created_ms),
  };
}

export interface CatalogRow {
  id: string;
  source: string;
  path: string;
  digest: string;
  state: string;
  tags: string;
  signed: number | boolean;
  verified: number | boolean;
  key_id: string | null;
  signature: string | null;
  sbom: string | null;
  canary_of?: string | null;
  canary_percent?: number | string | null;
  created_ms: number | string | bigint;
  updated_ms: number | string | bigint;
}

export function toCatalogRecord(r: CatalogRow): CatalogRecord {
  return {
    id: r.id,
    source: r.source,
    path: r.path,
    digest: r.digest,
    state: r.state as LifecycleState,
    tags: JSON.parse(r.tags) as string[],
    signed: Boolean(r.signed),
    verified: Boolean(r.verified),
    keyId: r.key_id ?? undefined,
    signature: r.signature ?? undefined,
    sbom: r.sbom === null ? undefined : (JSON.parse(r.sbom) as Record<string, unknown>),
    ...(r.canary_of == null ? {} : { canaryOf: r.canary_of, canaryPercent: Number(r.canary_percent ?? 0) }),
    createdMs: Number(r.created_ms),
    updatedMs: Number(r.updated_ms),
  };
}

export function catalogParams(m: CatalogRecord): unknown[] {
  return [
    m.id,
    m.source,
    m.path,
    m.digest,
    m.state,
    JSON.stringify(m.tags),
    m.signed ? 1 : 0,
    m.verified ? 1 : 0,
    m.keyId ?? null,
    m.signature ?? null,
    m.sbom === undefined ? null : JSON.stringify(m.sbom),
    m.createdMs,
    m.updatedMs,
  ];
}

export interface HistoryRow {
  at_ms: number | string | bigint;
  from_state: string | null;
  to_state: string;
  reason: string | null;
}

export const toStateChange = (r: HistoryRow): StateChange => ({
  atMs: Number(r.at_ms),
  from: (r.from_state ?? undefined) as LifecycleState | undefined,
  to: r.to_state as LifecycleState,
  reason: r.reason ?? undefined,
});

/** A row of `task_journal` as both drivers return it. */
export interface TaskJournalRow {
  task_id: string;
  tenant: string;
  pool_id: string;
  body_digest: string;
  spec: string;
  acceptance: string;
  cost: number | string;
  accepted_ms: number | string | bigint;
  deadline_at_ms: number | string | bigint;
  state: string;
  restarts: number | string;
  outcome: string | null;
  ended_ms: number | string | bigint | null;
}

export const toJournalEntry = (r: TaskJournalRow): TaskJournalEntry => ({
  taskId: r.task_id,
  tenant: r.tenant,
  poolId: r.pool_id,
  bodyDigest: r.body_digest,
  spec: JSON.parse(r.spec) as Record<string, unknown>,
  acceptance: JSON.parse(r.acceptance) as Record<string, unknown>,
  cost: Number(r.cost),
  acceptedMs: Number(r.accepted_ms),
  deadlineAtMs: Number(r.deadline_at_ms),
  state: r.state as TaskJournalState,
  restarts: Number(r.restarts),
  ...(r.outcome === null ? {} : { outcome: JSON.parse(r.outcome) as Record<string, unknown> }),
  ...(r.ended_ms === null ? {} : { endedMs: Number(r.ended_ms) }),
});

export function journalParams(e: TaskJournalEntry): unknown[] {
  return [
    e.taskId,
    e.tenant,
    e.poolId,
    e.bodyDigest,
    JSON.stringify(e.spec),
    JSON.stringify(e.acceptance),
    e.cost,
    Math.round(e.acceptedMs),
    Math.round(e.deadlineAtMs),
    e.state,
  ];
}

/** Not-ended tasks first, then the newest ended ones (SQL shared by both stores, `?`/`$n` apart). */
export const JOURNAL_OPEN = `SELECT * FROM task_journal WHERE state <> 'ended'`;
export const JOURNAL_ENDED = `SELECT * FROM task_journal WHERE state = 'ended' ORDER BY accepted_ms DESC, task_id DESC`;
export const byAccepted = (a: TaskJournalEntry, b: TaskJournalEntry): number =>
  a.acceptedMs - b.acceptedMs || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0);
