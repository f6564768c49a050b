/**
 * The operator console in a real browser (Debian's chromium via playwright-core) against a real
 * orchestrator on simulated engines: sign-in, the fleet, a task's live stream and its cancel, a
 * pool drain, a canary promotion and a canary start, the hosts with a pool-managerd node, the
 * signed-in tenant's sessions, and a data key that is offered no control action.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/http/auth.js';
import type { PoolHealth, TaskList } from '../../src/index.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';
import { ensureUiBuilt, haveChromium, launchChromium, signIn } from './console-browser.js';

if (!haveChromium)
  console.warn('console browser tests skipped: /usr/bin/chromium is missing (apt-get install chromium)');

const NODE_CREDENTIAL = 'console-node-credential';

describe.skipIf(!haveChromium)('operator console', () => {
  let h: Harness;
  let browser: Browser;

  beforeAll(async () => {
    await ensureUiBuilt();
    const dir = await mkdtemp(join(tmpdir(), 'llorch-console-'));
    h = await startHarness({
      auth: { keys: TEST_KEYS },
      catalog: { trust_policy: 'permissive' },
      // One pool-managerd node that registers (up) and one that never does (unseen).
      nodes: [
        { id: 'gpu-node-1', sha256: sha256Hex(NODE_CREDENTIAL) },
        { id: 'gpu-node-2', sha256: sha256Hex('unused-node-credential') },
      ],
      node_timeout_ms: 600_000,
      pools: [
        // 20 tokens/s: a long task streams for minutes, long enough to watch and cancel.
        simPool('slow', 'vllm', { launch: { worker: 'sim', parallel: 2, sim: { tokens_per_s: 20 } } }),
        simPool('to-drain', 'vllm'),
        simPool('stable', 'tgi', { model: { id: 'stable' } }),
        simPool('candidate', 'tgi', { model: { id: 'candidate' } }),
      ],
    });
    const model = async (id: string) => {
      const source = join(dir, `${id}.gguf`);
      await writeFile(source, id);
      expect(
        (await call(h.url, 'POST', '/v1/catalog/models', { key: KEYS.ops, body: { id, source } })).status,
      ).toBe(201);
    };
    const state = (id: string, body: Record<string, unknown>) =>
      call(h.url, 'POST', `/v1/catalog/models/${id}/state`, { key: KEYS.ops, body });
    for (const id of ['stable', 'candidate', 'baseline', 'challenger']) {
      await model(id);
      await state(id, { state: 'Active' });
    }
    expect((await state('candidate', { state: 'Canary', canary_of: 'stable', percent: 20 })).status).toBe(
      200,
    );
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('serves the console at /ui and signs in with a control key to the fleet', async () => {
    const page = await signIn(browser, h.url, KEYS.ops);
    await expect(page.title()).resolves.toBe('llama-orch console');
    await page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();
    const pools = page.getByRole('region', { name: 'Pools and replicas' });
    for (const id of ['slow', 'to-drain', 'stable', 'candidate'])
      await pools.locator(`tr[data-pool="${id}"]`).getByText('ready', { exact: true }).first().waitFor();
    await page
      .getByRole('region', { name: 'Replica sets' })
      .getByText('slow', { exact: true })
      .first()
      .waitFor();
    expect(await page.getByRole('link', { name: 'Operations' }).count()).toBe(1);
    await page.context().close();
  });

  it('signs in and moves between views with the keyboard alone', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${h.url}/ui/`);
    await page.keyboard.press('Tab');
    await expect(page.locator(':focus').getAttribute('id')).resolves.toBe('api-key');
    await page.keyboard.type(KEYS.ops);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet', level: 1 }).waitFor();
    // The skip link first, then the views in order.
    await page.keyboard.press('Tab');
    await expect(page.locator(':focus').textContent()).resolves.toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expect(page.locator(':focus').textContent()).resolves.toBe('Queues');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Queues', level: 1 }).waitFor();
    await context.close();
  });

  it('refuses an unknown key at sign-in', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${h.url}/ui/`);
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/not known/);
    await context.close();
  });

  it('watches a task stream live and cancels it', async () => {
    const t = task('slow', { engine: 'vllm', max_tokens: 1500, deadline_ms: 600_000 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t })).status).toBe(202);
    const page = await signIn(browser, h.url, KEYS.alice, 'tasks');
    await page.getByRole('button', { name: `Watch task ${t.task_id}` }).click();
    const text = page.getByTestId('stream-text');
    // Tokens arrive while the page is open: the text keeps growing.
    await until(async () => ((await text.textContent()) ?? '').length > 0);
    const first = ((await text.textContent()) ?? '').length;
    await until(async () => ((await text.textContent()) ?? '').length > first);
    await page.getByRole('button', { name: 'Cancel task' }).click();
    const terminal = page.getByTestId('terminal');
    await terminal.waitFor();
    await expect(terminal.textContent()).resolves.toMatch(/canceled\s*true/);
    const listed = (await call(h.url, 'GET', '/v1/tasks?state=ended', { key: KEYS.alice })).json as TaskList;
    expect(listed.tasks.find((x) => x.task_id === t.task_id)?.state).toBe('canceled');
    await page.context().close();
  });

  it('drains a pool after a confirmation and shows it drained', async () => {
    const page = await signIn(browser, h.url, KEYS.ops, 'operations');
    await page.getByRole('button', { name: 'Drain to-drain' }).click();
    const dialog = page.getByRole('dialog', { name: 'Drain to-drain' });
    await dialog.getByRole('button', { name: 'Drain' }).click();
    const row = page.locator('tr[data-pool="to-drain"]');
    await row.getByText('drained', { exact: true }).waitFor();
    await page.getByTestId('lifecycle-to-drain').getByText('drain').waitFor();
    const health = (await call(h.url, 'GET', '/v1/pools/to-drain/health', { key: KEYS.ops }))
      .json as PoolHealth;
    expect([health.draining, health.ready]).toEqual([true, false]);
    await expect(row.getByRole('button', { name: 'Drain to-drain' }).isDisabled()).resolves.toBe(true);
    await page.context().close();
  });

  it('promotes a canary after a confirmation', async () => {
    const page = await signIn(browser, h.url, KEYS.ops, 'catalog');
    const row = page.locator('tr[data-model="candidate"]');
    await row.locator('td.state').getByText('canary of stable (20%)').waitFor();
    await row.getByRole('button', { name: 'Promote candidate' }).click();
    await page
      .getByRole('dialog', { name: 'Promote canary candidate' })
      .getByRole('button', { name: 'Promote' })
      .click();
    await page.getByRole('status').getByText('candidate is now Active').waitFor();
    await page.locator('tr[data-model="stable"] td.state').getByText('Deprecated', { exact: true }).waitFor();
    // The lifecycle history comes from the API, not from what this page saw.
    await row.getByText(/^Canary → Active/).waitFor();
    const models = (await call(h.url, 'GET', '/v1/catalog/models', { key: KEYS.ops })).json as {
      models: { id: string; state: string }[];
    };
    expect(Object.fromEntries(models.models.map((m) => [m.id, m.state]))).toMatchObject({
      candidate: 'Active',
      stable: 'Deprecated',
    });
    await page.context().close();
  });

  it('starts a canary from the catalog after a confirmation', async () => {
    const page = await signIn(browser, h.url, KEYS.ops, 'catalog');
    const row = page.locator('tr[data-model="challenger"]');
    await row.getByLabel('of').selectOption('baseline');
    await row.getByLabel('share %').fill('30');
    await row.getByRole('button', { name: 'Start canary challenger' }).click();
    await page
      .getByRole('dialog', { name: 'Start canary challenger' })
      .getByRole('button', { name: 'Start canary' })
      .click();
    await page.getByRole('status').getByText('challenger is now Canary of baseline (30%)').waitFor();
    await row.locator('td.state').getByText('canary of baseline (30%)').waitFor();
    const m = (await call(h.url, 'GET', '/v1/catalog/models/challenger', { key: KEYS.ops })).json as {
      state: string;
      canary_of?: string;
      canary_percent?: number;
    };
    expect([m.state, m.canary_of, m.canary_percent]).toEqual(['Canary', 'baseline', 30]);
    await page.context().close();
  });

  it('shows the hosts: the orchestrator host and each pool-managerd node with its state', async () => {
    const reg = await call(h.url, 'POST', '/v1/nodes/register', {
      headers: { authorization: `Bearer ${NODE_CREDENTIAL}` },
      body: { node_id: 'gpu-node-1', pools: [] },
    });
    expect(reg.status).toBe(200);
    const page = await signIn(browser, h.url, KEYS.ops);
    const hosts = page.getByRole('region', { name: 'Hosts' });
    await hosts.locator('tr[data-host="local"]').getByText('orchestrator host').waitFor();
    await hosts.locator('tr[data-host="gpu-node-1"]').getByText('up', { exact: true }).waitFor();
    await hosts.locator('tr[data-host="gpu-node-2"]').getByText('unseen', { exact: true }).waitFor();
    await page.context().close();
  });

  it("lists the signed-in tenant's sessions and no other tenant's", async () => {
    const mine = randomUUID();
    const theirs = randomUUID();
    for (const [key, session] of [
      [KEYS.alice, mine],
      [KEYS.bob, theirs],
    ] as const) {
      const body = task('slow', { engine: 'vllm', session_id: session, max_tokens: 2 });
      expect((await call(h.url, 'POST', '/v1/tasks', { key, body })).status).toBe(202);
    }
    const page = await signIn(browser, h.url, KEYS.alice, 'sessions');
    const region = page.getByRole('region', { name: 'Sessions' });
    await region.getByRole('rowheader', { name: mine }).waitFor();
    expect(await region.getByText(theirs).count()).toBe(0);
    await page.getByLabel('Filter by session id').fill(mine.slice(0, 8));
    await region.getByRole('rowheader', { name: mine }).waitFor();
    await page.context().close();
  });

  it('offers a data key no control view or action', async () => {
    const page = await signIn(browser, h.url, KEYS.alice, 'operations');
    const nav = page.getByRole('navigation', { name: 'Views' });
    await nav.getByRole('link', { name: 'Tasks' }).waitFor();
    for (const name of ['Fleet', 'Catalog', 'Operations'])
      expect(await nav.getByRole('link', { name }).count(), name).toBe(0);
    // A control view's address falls back to a view the key may see.
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.not.toBe('Operations');
    await page
      .getByRole('note')
      .getByText(/need a control key/)
      .waitFor();
    expect(await page.getByRole('button', { name: /^(Drain|Reload|Roll back|Promote)/ }).count()).toBe(0);
    await page.context().close();
  });
});
