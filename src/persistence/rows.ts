import type { ArtifactRecord } from './store.js';

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
