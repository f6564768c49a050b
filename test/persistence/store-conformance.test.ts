/**
 * One conformance suite for every store (SPEC §8): the embedded SQLite file and a real
 * PostgreSQL server. Migrations, idempotent content-addressed writes, tags, lineage, tenant
 * isolation, JSON fidelity, durability across reopen.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/persistence/migrations.js';
import { PostgresStore } from '../../src/persistence/postgres-store.js';
import { SqliteStore } from '../../src/persistence/sqlite-store.js';
import type { ArtifactRecord, Store } from '../../src/persistence/store.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

let pg: TestPostgres;
let sqlitePath: string;
beforeAll(async () => {
  pg = await startPostgres();
  sqlitePath = join(await mkdtemp(join(tmpdir(), 'llorch-sqlite-')), 'llorch.db');
}, 120_000);
afterAll(async () => {
  await pg.stop();
});

const backends: [string, () => Promise<Store>][] = [
  ['sqlite', () => Promise.resolve(new SqliteStore(sqlitePath))],
  ['postgres', () => PostgresStore.open(pg.url)],
];

let n = 0;
const art = (o: Partial<ArtifactRecord> = {}): ArtifactRecord => ({
  tenant: 'alice',
  id: `sha256:${(++n).toString(16).padStart(64, '0')}`,
  kind: 'plan',
  digest: `sha256:${'d'.repeat(64)}`,
  content: { steps: ['a', 'b'], n: 1.5, unicode: 'Grüße ✓', nested: { deep: [null, true] } },
  parent: undefined,
  metadata: undefined,
  tags: [],
  createdMs: 1_000 + n,
  ...o,
});

describe.each(backends)('store conformance: %s', (_name, open) => {
  let store: Store;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store.close();
  });

  it('applies every migration once; reopening applies nothing again', async () => {
    expect(await store.schemaVersion()).toBe(MIGRATIONS.length);
    const again = await open();
    expect(await again.schemaVersion()).toBe(MIGRATIONS.length);
    await again.close();
  });

  it('round-trips an artifact with its JSON content exactly', async () => {
    const a = art({ tags: ['x', 'a'], metadata: { by: 'agent-7' } });
    const { record, created } = await store.putArtifact(a);
    expect(created).toBe(true);
    expect(record).toEqual({ ...a, tags: ['a', 'x'] });
    expect(await store.getArtifact('alice', a.id)).toEqual(record);
  });

  it('storing the same id again is idempotent: first record kept, tags merged', async () => {
    const a = art({ tags: ['one'] });
    await store.putArtifact(a);
    const { record, created } = await store.putArtifact({ ...a, tags: ['two'], createdMs: 999_999 });
    expect(created).toBe(false);
    expect(record.createdMs).toBe(a.createdMs);
    expect(record.tags).toEqual(['one', 'two']);
  });

  it('tenants see only their own artifacts', async () => {
    const a = art();
    await store.putArtifact(a);
    expect(await store.getArtifact('bob', a.id)).toBeUndefined();
    await store.putArtifact({ ...a, tenant: 'bob', content: 'bob owns a copy' });
    expect((await store.getArtifact('bob', a.id))?.content).toBe('bob owns a copy');
    expect((await store.getArtifact('alice', a.id))?.content).toEqual(a.content);
  });

  it('lists by tag and by lineage, newest first', async () => {
    const parent = art({ tenant: 'lineage', tags: ['root'] });
    await store.putArtifact(parent);
    const kids = [
      art({ tenant: 'lineage', parent: parent.id, tags: ['kid'] }),
      art({ tenant: 'lineage', parent: parent.id }),
    ];
    for (const k of kids) await store.putArtifact(k);
    await store.putArtifact(art({ tenant: 'lineage', tags: ['kid'] }));
    const children = await store.listArtifacts('lineage', { parent: parent.id, limit: 10 });
    expect(children.map((c) => c.id)).toEqual([kids[1]?.id, kids[0]?.id]);
    expect((await store.listArtifacts('lineage', { tag: 'kid', limit: 10 })).length).toBe(2);
    expect(
      (await store.listArtifacts('lineage', { tag: 'kid', parent: parent.id, limit: 10 })).map((c) => c.id),
    ).toEqual([kids[0]?.id]);
    expect(await store.listArtifacts('lineage', { tag: 'kid', limit: 1 })).toHaveLength(1);
  });

  it('catalog: entries with history, optimistic state moves, verification flags', async () => {
    const id = `model-${++n}`;
    const m = {
      id,
      source: 'file:/models/m.gguf',
      path: '/models/m.gguf',
      digest: `sha256:${'a'.repeat(64)}`,
      state: 'Draft' as const,
      tags: ['q4'],
      signed: true,
      verified: true,
      keyId: 'ABCDEF0123456789',
      signature: 'untrusted comment: x',
      sbom: { packages: [{ name: 'weights' }] },
      createdMs: 10,
      updatedMs: 10,
    };
    expect(await store.addModel(m, 'ingested')).toBe(true);
    expect(await store.addModel(m, 'again')).toBe(false);
    expect(await store.getModel(id)).toEqual(m);
    expect(await store.setModelState(id, 'Draft', 'Active', 20, 'ready')).toBe(true);
    // A concurrent writer that still thinks it is Draft loses.
    expect(await store.setModelState(id, 'Draft', 'Retired', 21, undefined)).toBe(false);
    await store.setModelVerified(id, false, 30);
    expect(await store.getModel(id)).toMatchObject({ state: 'Active', verified: false, updatedMs: 30 });
    expect(await store.modelHistory(id)).toEqual([
      { atMs: 10, from: undefined, to: 'Draft', reason: 'ingested' },
      { atMs: 20, from: 'Draft', to: 'Active', reason: 'ready' },
    ]);
    expect((await store.listModels()).map((x) => x.id)).toContain(id);
    await store.setModelCanary(id, 'stable-model', 12.5, 40);
    expect(await store.getModel(id)).toMatchObject({ canaryOf: 'stable-model', canaryPercent: 12.5 });
    await store.setModelCanary(id, undefined, undefined, 41);
    expect((await store.getModel(id))?.canaryOf).toBeUndefined();
  });

  it('session budgets ledger: turns accumulate per tenant and session', async () => {
    const sid = `s-${++n}`;
    expect(await store.getSessionUsage('alice', sid)).toBeUndefined();
    await store.addSessionUsage('alice', sid, { tokens: 10, wallMs: 100.4, cost: 0.25 }, 1);
    await store.addSessionUsage('alice', sid, { tokens: 5, wallMs: 50, cost: 0.5 }, 2);
    expect(await store.getSessionUsage('alice', sid)).toEqual({ tokens: 15, wallMs: 150, cost: 0.75 });
    expect(await store.getSessionUsage('bob', sid)).toBeUndefined();
  });

  it('data survives closing and reopening the store', async () => {
    const a = art({ tenant: 'durable' });
    await store.putArtifact(a);
    const again = await open();
    expect((await again.getArtifact('durable', a.id))?.content).toEqual(a.content);
    await again.close();
  });
});
