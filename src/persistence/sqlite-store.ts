/** The embedded store: one SQLite file under the data directory, WAL mode (SPEC §8). */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, MIGRATIONS_TABLE } from './migrations.js';
import {
  JOURNAL_ENDED,
  JOURNAL_OPEN,
  byAccepted,
  catalogParams,
  journalParams,
  toJournalEntry,
  toCatalogRecord,
  toRecord,
  toStateChange,
  type ArtifactRow,
  type CatalogRow,
  type HistoryRow,
  type TaskJournalRow,
} from './rows.js';
import type {
  ArtifactQuery,
  ArtifactRecord,
  CatalogRecord,
  LifecycleState,
  StateChange,
  Store,
  TaskJournalEntry,
  TaskJournalOp,
} from './store.js';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  /** Prepared once per SQL text: preparing costs more than running on hot paths (per task). */
  readonly #statements = new Map<string, Database.Statement>();

  #journalTx: ((ops: readonly TaskJournalOp[]) => void) | undefined;

  #prepare(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (!st) this.#statements.set(sql, (st = this.#db.prepare(sql)));
    return st;
  }

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    // WAL: readers never block the writer, and a crash (kill -9) loses no committed write.
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 5000');
    this.#migrate();
  }

  #migrate(): void {
    this.#db.exec(MIGRATIONS_TABLE);
    const applied = new Set(
      (this.#prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db.transaction(() => {
        for (const sql of m.statements) this.#db.exec(sql);
        this.#prepare('INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)').run(
          m.version,
          m.name,
          Date.now(),
        );
      })();
    }
  }

  schemaVersion(): Promise<number> {
    const r = this.#prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
      v: number | null;
    };
    return Promise.resolve(r.v ?? 0);
  }

  #tags(tenant: string, id: string): string[] {
    return (
      this.#prepare('SELECT tag FROM artifact_tags WHERE tenant = ? AND id = ?').all(tenant, id) as {
        tag: string;
      }[]
    ).map((r) => r.tag);
  }

  putArtifact(a: ArtifactRecord): Promise<{ record: ArtifactRecord; created: boolean }> {
    const run = this.#db.transaction(() => {
      const created =
        this.#prepare(
          `INSERT INTO artifacts (tenant, id, kind, digest, content, parent, metadata, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`,
        ).run(
          a.tenant,
          a.id,
          a.kind,
          a.digest,
          JSON.stringify(a.content),
          a.parent ?? null,
          a.metadata === undefined ? null : JSON.stringify(a.metadata),
          a.createdMs,
        ).changes === 1;
      const tag = this.#prepare(
        'INSERT INTO artifact_tags (tenant, id, tag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      );
      for (const t of a.tags) tag.run(a.tenant, a.id, t);
      return created;
    });
    const created = run();
    const row = this.#prepare('SELECT * FROM artifacts WHERE tenant = ? AND id = ?').get(
      a.tenant,
      a.id,
    ) as ArtifactRow;
    return Promise.resolve({ record: toRecord(row, this.#tags(a.tenant, a.id)), created });
  }

  getArtifact(tenant: string, id: string): Promise<ArtifactRecord | undefined> {
    const row = this.#prepare('SELECT * FROM artifacts WHERE tenant = ? AND id = ?').get(tenant, id) as
      ArtifactRow | undefined;
    return Promise.resolve(row && toRecord(row, this.#tags(tenant, id)));
  }

  listArtifacts(tenant: string, q: ArtifactQuery): Promise<ArtifactRecord[]> {
    const where = ['a.tenant = ?'];
    const args: unknown[] = [tenant];
    if (q.parent !== undefined) {
      where.push('a.parent = ?');
      args.push(q.parent);
    }
    if (q.tag !== undefined) {
      where.push(
        'EXISTS (SELECT 1 FROM artifact_tags t WHERE t.tenant = a.tenant AND t.id = a.id AND t.tag = ?)',
      );
      args.push(q.tag);
    }
    const rows = this.#prepare(
      `SELECT a.* FROM artifacts a WHERE ${where.join(' AND ')} ORDER BY a.created_ms DESC, a.id LIMIT ?`,
    ).all(...args, q.limit) as ArtifactRow[];
    return Promise.resolve(rows.map((r) => toRecord(r, this.#tags(tenant, r.id))));
  }

  addModel(m: CatalogRecord, reason: string): Promise<boolean> {
    const run = this.#db.transaction(() => {
      const added =
        this.#prepare(
          `INSERT INTO catalog_models (id, source, path, digest, state, tags, signed, verified, key_id, signature, sbom, created_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        ).run(...catalogParams(m)).changes === 1;
      if (added)
        this.#prepare(
          'INSERT INTO catalog_history (model_id, at_ms, from_state, to_state, reason) VALUES (?, ?, NULL, ?, ?)',
        ).run(m.id, m.createdMs, m.state, reason);
      return added;
    });
    return Promise.resolve(run());
  }

  getModel(id: string): Promise<CatalogRecord | undefined> {
    const r = this.#prepare('SELECT * FROM catalog_models WHERE id = ?').get(id) as CatalogRow | undefined;
    return Promise.resolve(r && toCatalogRecord(r));
  }

  listModels(): Promise<CatalogRecord[]> {
    const rows = this.#prepare('SELECT * FROM catalog_models ORDER BY id').all() as CatalogRow[];
    return Promise.resolve(rows.map(toCatalogRecord));
  }

  setModelState(
    id: string,
    from: LifecycleState,
    to: LifecycleState,
    atMs: number,
    reason: string | undefined,
  ): Promise<boolean> {
    const run = this.#db.transaction(() => {
      const moved =
        this.#prepare('UPDATE catalog_models SET state = ?, updated_ms = ? WHERE id = ? AND state = ?').run(
          to,
          atMs,
          id,
          from,
        ).changes === 1;
      if (moved)
        this.#prepare(
          'INSERT INTO catalog_history (model_id, at_ms, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)',
        ).run(id, atMs, from, to, reason ?? null);
      return moved;
    });
    return Promise.resolve(run());
  }

  modelHistory(id: string): Promise<StateChange[]> {
    const rows = this.#prepare(
      'SELECT at_ms, from_state, to_state, reason FROM catalog_history WHERE model_id = ? ORDER BY at_ms, rowid',
    ).all(id) as HistoryRow[];
    return Promise.resolve(rows.map(toStateChange));
  }

  setModelCanary(
    id: string,
    of: string | undefined,
    percent: number | undefined,
    atMs: number,
  ): Promise<void> {
    this.#prepare(
      'UPDATE catalog_models SET canary_of = ?, canary_percent = ?, updated_ms = ? WHERE id = ?',
    ).run(of ?? null, percent ?? null, atMs, id);
    return Promise.resolve();
  }

  setModelVerified(id: string, verified: boolean, atMs: number): Promise<void> {
    this.#prepare('UPDATE catalog_models SET verified = ?, updated_ms = ? WHERE id = ?').run(
      verified ? 1 : 0,
      atMs,
      id,
    );
    return Promise.resolve();
  }

  addSessionUsage(
    tenant: string,
    sessionId: string,
    u: { tokens: number; wallMs: number; cost: number },
    atMs: number,
  ): Promise<void> {
    this.#prepare(
      `INSERT INTO session_usage (session_id, tenant, tokens, wall_ms, cost, updated_ms) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, session_id) DO UPDATE SET tokens = tokens + excluded.tokens, wall_ms = wall_ms + excluded.wall_ms,
         cost = cost + excluded.cost, updated_ms = excluded.updated_ms`,
    ).run(sessionId, tenant, u.tokens, Math.round(u.wallMs), u.cost, atMs);
    return Promise.resolve();
  }

  getSessionUsage(
    tenant: string,
    sessionId: string,
  ): Promise<{ tokens: number; wallMs: number; cost: number } | undefined> {
    const r = this.#prepare(
      'SELECT tokens, wall_ms, cost FROM session_usage WHERE tenant = ? AND session_id = ?',
    ).get(tenant, sessionId) as { tokens: number; wall_ms: number; cost: number } | undefined;
    return Promise.resolve(
      r && { tokens: Number(r.tokens), wallMs: Number(r.wall_ms), cost: Number(r.cost) },
    );
  }

  writeTaskJournal(ops: readonly TaskJournalOp[]): Promise<void> {
    const insert = this.#prepare(
      `INSERT INTO task_journal (task_id, tenant, pool_id, body_digest, spec, acceptance, cost, accepted_ms, deadline_at_ms, state)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING`,
    );
    const running = this.#prepare(
      "UPDATE task_journal SET state = 'running' WHERE task_id = ? AND state = 'queued'",
    );
    const ended = this.#prepare(
      "UPDATE task_journal SET state = 'ended', outcome = ?, ended_ms = ? WHERE task_id = ? AND state <> 'ended'",
    );
    const restarted = this.#prepare('UPDATE task_journal SET restarts = ? WHERE task_id = ?');
    // Built once: the journal commits up to three times per task, and wrapping a new function
    // per commit showed in the profiles.
    this.#journalTx ??= this.#db.transaction((batch: readonly TaskJournalOp[]) => {
      for (const o of batch) {
        if (o.op === 'accepted') insert.run(...journalParams(o.entry));
        else if (o.op === 'running') running.run(o.taskId);
        else if (o.op === 'restarted') restarted.run(o.restarts, o.taskId);
        else ended.run(JSON.stringify(o.outcome), Math.round(o.atMs), o.taskId);
      }
    });
    try {
      this.#journalTx(ops);
      return Promise.resolve();
    } catch (err) {
      // A rejection like the PostgreSQL store's, not a throw: callers treat both stores alike.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  loadTaskJournal(endedLimit: number): Promise<TaskJournalEntry[]> {
    const open = this.#prepare(JOURNAL_OPEN).all() as TaskJournalRow[];
    const ended = this.#prepare(`${JOURNAL_ENDED} LIMIT ?`).all(endedLimit) as TaskJournalRow[];
    return Promise.resolve([...open, ...ended].map(toJournalEntry).sort(byAccepted));
  }

  pruneTaskJournal(keep: number): Promise<number> {
    const r = this.#prepare(
      `DELETE FROM task_journal WHERE state = 'ended' AND task_id NOT IN
         (SELECT task_id FROM task_journal WHERE state = 'ended' ORDER BY accepted_ms DESC, task_id DESC LIMIT ?)`,
    ).run(keep);
    return Promise.resolve(r.changes);
  }

  close(): Promise<void> {
    this.#db.close();
    return Promise.resolve();
  }
}
