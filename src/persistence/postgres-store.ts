/** The shared store for several orchestrator instances: PostgreSQL, configured by URL (SPEC §8). */
import pg from 'pg';
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

/** Serializes migrations across instances starting at once. */
const MIGRATION_LOCK = 0x6c6c6f72; // 'llor'

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  static async open(url: string): Promise<PostgresStore> {
    const store = new PostgresStore(new pg.Pool({ connectionString: url, max: 8 }));
    await store.#migrate();
    return store;
  }

  async #migrate(): Promise<void> {
    const c = await this.#pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await c.query(MIGRATIONS_TABLE);
      const applied = new Set(
        (await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
          (r) => r.version,
        ),
      );
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          for (const sql of m.statements) await c.query(sql);
          await c.query('INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)', [
            m.version,
            m.name,
            Date.now(),
          ]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK');
          throw err;
        }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      c.release();
    }
  }

  async schemaVersion(): Promise<number> {
    const r = await this.#pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    return r.rows[0]?.v ?? 0;
  }

  async #tags(tenant: string, id: string): Promise<string[]> {
    const r = await this.#pool.query<{ tag: string }>(
      'SELECT tag FROM artifact_tags WHERE tenant = $1 AND id = $2',
      [tenant, id],
    );
    return r.rows.map((x) => x.tag);
  }

  async putArtifact(a: ArtifactRecord): Promise<{ record: ArtifactRecord; created: boolean }> {
    const c = await this.#pool.connect();
    let created: boolean;
    try {
      await c.query('BEGIN');
      const r = await c.query(
        `INSERT INTO artifacts (tenant, id, kind, digest, content, parent, metadata, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, id) DO NOTHING`,
        [
          a.tenant,
          a.id,
          a.kind,
          a.digest,
          JSON.stringify(a.content),
          a.parent ?? null,
          a.metadata === undefined ? null : JSON.stringify(a.metadata),
          a.createdMs,
        ],
      );
      created = r.rowCount === 1;
      for (const t of a.tags)
        await c.query(
          'INSERT INTO artifact_tags (tenant, id, tag) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [a.tenant, a.id, t],
        );
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    } finally {
      c.release();
    }
    const record = await this.getArtifact(a.tenant, a.id);
    if (!record) throw new Error(`artifact ${a.id} vanished after insert`);
    return { record, created };
  }

  async getArtifact(tenant: string, id: string): Promise<ArtifactRecord | undefined> {
    const r = await this.#pool.query<ArtifactRow>('SELECT * FROM artifacts WHERE tenant = $1 AND id = $2', [
      tenant,
      id,
    ]);
    const row = r.rows[0];
    return row && toRecord(row, await this.#tags(tenant, id));
  }

  async listArtifacts(tenant: string, q: ArtifactQuery): Promise<ArtifactRecord[]> {
    const where = ['a.tenant = $1'];
    const args: unknown[] = [tenant];
    if (q.parent !== undefined) {
      args.push(q.parent);
      where.push(`a.parent = $${args.length}`);
    }
    if (q.tag !== undefined) {
      args.push(q.tag);
      where.push(
        `EXISTS (SELECT 1 FROM artifact_tags t WHERE t.tenant = a.tenant AND t.id = a.id AND t.tag = $${args.length})`,
      );
    }
    args.push(q.limit);
    const r = await this.#pool.query<ArtifactRow>(
      `SELECT a.* FROM artifacts a WHERE ${where.join(' AND ')} ORDER BY a.created_ms DESC, a.id LIMIT $${args.length}`,
      args,
    );
    return Promise.all(r.rows.map(async (row) => toRecord(row, await this.#tags(tenant, row.id))));
  }

  async addModel(m: CatalogRecord, reason: string): Promise<boolean> {
    return this.#tx(async (c) => {
      const r = await c.query(
        `INSERT INTO catalog_models (id, source, path, digest, state, tags, signed, verified, key_id, signature, sbom, created_ms, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING`,
        catalogParams(m),
      );
      if (r.rowCount !== 1) return false;
      await c.query(
        'INSERT INTO catalog_history (model_id, at_ms, from_state, to_state, reason) VALUES ($1, $2, NULL, $3, $4)',
        [m.id, m.createdMs, m.state, reason],
      );
      return true;
    });
  }

  async getModel(id: string): Promise<CatalogRecord | undefined> {
    const r = await this.#pool.query<CatalogRow>('SELECT * FROM catalog_models WHERE id = $1', [id]);
    const row = r.rows[0];
    return row && toCatalogRecord(row);
  }

  async listModels(): Promise<CatalogRecord[]> {
    return (await this.#pool.query<CatalogRow>('SELECT * FROM catalog_models ORDER BY id')).rows.map(
      toCatalogRecord,
    );
  }

  async setModelState(
    id: string,
    from: LifecycleState,
    to: LifecycleState,
    atMs: number,
    reason: string | undefined,
  ): Promise<boolean> {
    return this.#tx(async (c) => {
      const r = await c.query(
        'UPDATE catalog_models SET state = $1, updated_ms = $2 WHERE id = $3 AND state = $4',
        [to, atMs, id, from],
      );
      if (r.rowCount !== 1) return false;
      await c.query(
        'INSERT INTO catalog_history (model_id, at_ms, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)',
        [id, atMs, from, to, reason ?? null],
      );
      return true;
    });
  }

  async modelHistory(id: string): Promise<StateChange[]> {
    const r = await this.#pool.query<HistoryRow>(
      'SELECT at_ms, from_state, to_state, reason FROM catalog_history WHERE model_id = $1 ORDER BY at_ms, ctid',
      [id],
    );
    return r.rows.map(toStateChange);
  }

  async setModelCanary(
    id: string,
    of: string | undefined,
    percent: number | undefined,
    atMs: number,
  ): Promise<void> {
    await this.#pool.query(
      'UPDATE catalog_models SET canary_of = $1, canary_percent = $2, updated_ms = $3 WHERE id = $4',
      [of ?? null, percent ?? null, atMs, id],
    );
  }

  async setModelVerified(id: string, verified: boolean, atMs: number): Promise<void> {
    await this.#pool.query('UPDATE catalog_models SET verified = $1, updated_ms = $2 WHERE id = $3', [
      verified ? 1 : 0,
      atMs,
      id,
    ]);
  }

  async addSessionUsage(
    tenant: string,
    sessionId: string,
    u: { tokens: number; wallMs: number; cost: number },
    atMs: number,
  ): Promise<void> {
    await this.#pool.query(
      `INSERT INTO session_usage (session_id, tenant, tokens, wall_ms, cost, updated_ms) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant, session_id) DO UPDATE SET tokens = session_usage.tokens + excluded.tokens,
       wall_ms = session_usage.wall_ms + excluded.wall_ms, cost = session_usage.cost + excluded.cost, updated_ms = excluded.updated_ms`,
      [sessionId, tenant, u.tokens, Math.round(u.wallMs), u.cost, atMs],
    );
  }

  async getSessionUsage(
    tenant: string,
    sessionId: string,
  ): Promise<{ tokens: number; wallMs: number; cost: number } | undefined> {
    const r = await this.#pool.query<{ tokens: string; wall_ms: string; cost: number }>(
      'SELECT tokens, wall_ms, cost FROM session_usage WHERE tenant = $1 AND session_id = $2',
      [tenant, sessionId],
    );
    const row = r.rows[0];
    return row && { tokens: Number(row.tokens), wallMs: Number(row.wall_ms), cost: Number(row.cost) };
  }

  async writeTaskJournal(ops: readonly TaskJournalOp[]): Promise<void> {
    await this.#tx(async (c) => {
      for (const o of ops) {
        if (o.op === 'accepted')
          await c.query(
            `INSERT INTO task_journal (task_id, tenant, pool_id, body_digest, spec, acceptance, cost, accepted_ms, deadline_at_ms, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (task_id) DO NOTHING`,
            journalParams(o.entry),
          );
        else if (o.op === 'running')
          await c.query("UPDATE task_journal SET state = 'running' WHERE task_id = $1 AND state = 'queued'", [
            o.taskId,
          ]);
        else if (o.op === 'restarted')
          await c.query('UPDATE task_journal SET restarts = $1 WHERE task_id = $2', [o.restarts, o.taskId]);
        else
          await c.query(
            "UPDATE task_journal SET state = 'ended', outcome = $1, ended_ms = $2 WHERE task_id = $3 AND state <> 'ended'",
            [JSON.stringify(o.outcome), Math.round(o.atMs), o.taskId],
          );
      }
    });
  }

  async loadTaskJournal(endedLimit: number): Promise<TaskJournalEntry[]> {
    const open = await this.#pool.query<TaskJournalRow>(JOURNAL_OPEN);
    const ended = await this.#pool.query<TaskJournalRow>(`${JOURNAL_ENDED} LIMIT $1`, [endedLimit]);
    return [...open.rows, ...ended.rows].map(toJournalEntry).sort(byAccepted);
  }

  async pruneTaskJournal(keep: number): Promise<number> {
    const r = await this.#pool.query(
      `DELETE FROM task_journal WHERE state = 'ended' AND task_id NOT IN
         (SELECT task_id FROM task_journal WHERE state = 'ended' ORDER BY accepted_ms DESC, task_id DESC LIMIT $1)`,
      [keep],
    );
    return r.rowCount ?? 0;
  }

  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
