/**
 * Schema migrations, versioned in the repository and applied in order at startup by both stores.
 * The SQL is the common subset of SQLite and PostgreSQL. Never edit a released migration: add one.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'artifacts',
    statements: [
      `CREATE TABLE artifacts (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        digest TEXT NOT NULL,
        content TEXT NOT NULL,
        parent TEXT,
        metadata TEXT,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, id)
      )`,
      `CREATE INDEX artifacts_by_parent ON artifacts (tenant, parent)`,
      `CREATE TABLE artifact_tags (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (tenant, id, tag)
      )`,
      `CREATE INDEX artifact_tags_by_tag ON artifact_tags (tenant, tag)`,
    ],
  },
  {
    version: 2,
    name: 'catalog',
    statements: [
      `CREATE TABLE catalog_models (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        path TEXT NOT NULL,
        digest TEXT NOT NULL,
        state TEXT NOT NULL,
        tags TEXT NOT NULL,
        signed INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        key_id TEXT,
        signature TEXT,
        sbom TEXT,
        canary_of TEXT,
        canary_percent DOUBLE PRECISION,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
      )`,
      `CREATE TABLE catalog_history (
        model_id TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT
      )`,
      `CREATE INDEX catalog_history_by_model ON catalog_history (model_id, at_ms)`,
    ],
  },
  {
    version: 3,
    name: 'session budgets ledger',
    statements: [
      `CREATE TABLE session_usage (
        session_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        tokens BIGINT NOT NULL,
        wall_ms BIGINT NOT NULL,
        cost DOUBLE PRECISION NOT NULL,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (tenant, session_id)
      )`,
    ],
  },
  {
    version: 4,
    name: 'task journal',
    statements: [
      // One row per accepted task (SPEC §17.1): enough to queue it again after a restart, and to
      // answer a resubmission of its id idempotently (SPEC §17 §2.1) while the id is remembered.
      `CREATE TABLE task_journal (
        task_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        pool_id TEXT NOT NULL,
        body_digest TEXT NOT NULL,
        spec TEXT NOT NULL,
        acceptance TEXT NOT NULL,
        cost DOUBLE PRECISION NOT NULL,
        accepted_ms BIGINT NOT NULL,
        deadline_at_ms BIGINT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        ended_ms BIGINT
      )`,
      `CREATE INDEX task_journal_by_state ON task_journal (state, accepted_ms)`,
      `CREATE INDEX task_journal_by_accepted ON task_journal (accepted_ms)`,
    ],
  },
  {
    version: 5,
    name: 'task journal restarts',
    statements: [
      // How many times a task was taken back after a restart: its next run's event ids start
      // above every id an earlier run handed out (a `Last-Event-ID` never skips new events).
      `ALTER TABLE task_journal ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0`,
    ],
  },
];

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_ms BIGINT NOT NULL
)`;
