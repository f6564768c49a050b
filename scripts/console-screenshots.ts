/**
 * Screenshots of every console view, for docs/console/: a simulated fleet (GPU telemetry from the
 * nvidia-smi stand-in) under a steady mixed load, captured in Debian's chromium.
 *
 *   npx tsx scripts/console-screenshots.ts        # writes docs/console/<view>.png
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { sha256Hex } from '../src/http/auth.js';
import { KEYS, TEST_KEYS, call, simPool, startHarness, task, until } from '../test/support/harness.js';
import { ensureUiBuilt, launchChromium, signIn } from '../test/browser/console-browser.js';
import { STAND_IN, fixture } from '../test/support/nvidia-smi-stand-in.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'docs', 'console');
/** How long the load runs before the first picture: the charts need some history. */
const WARMUP_MS = Number(process.env['CONSOLE_WARMUP_MS'] ?? 45_000);

process.env['FAKE_NVIDIA_SMI_FILE'] = fixture('four-gpus.csv');
process.env['FAKE_NVIDIA_SMI_APPS_FILE'] = join(await mkdtemp(join(tmpdir(), 'llorch-shots-')), 'apps.csv');
await writeFile(process.env['FAKE_NVIDIA_SMI_APPS_FILE'], '');

await ensureUiBuilt();
await mkdir(out, { recursive: true });
const dir = await mkdtemp(join(tmpdir(), 'llorch-shots-'));
const NODE_CREDENTIAL = 'screenshot-node-credential';
const h = await startHarness({
  auth: { keys: TEST_KEYS },
  catalog: { trust_policy: 'permissive' },
  engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 1_000 },
  // bob's rate limit turns part of his load into refusals, for the admissions table.
  fairness: { tenants: [{ id: 'bob', rps: 1, burst: 2 }] },
  // Two pool-managerd nodes: one registers below (up), one never does (unseen).
  nodes: [
    { id: 'gpu-node-1', sha256: sha256Hex(NODE_CREDENTIAL) },
    { id: 'gpu-node-2', sha256: sha256Hex('unused-node-credential') },
  ],
  node_timeout_ms: 600_000,
  pools: [
    simPool('chat-a', 'vllm', {
      devices: [0],
      replicas: 2,
      launch: { worker: 'sim', parallel: 4, sim: { tokens_per_s: 60 } },
      budgets: { session_tokens: 20_000 },
    }),
    simPool('chat-b', 'vllm', {
      devices: [1],
      model: { id: 'chat-a' },
      launch: { worker: 'sim', parallel: 4, sim: { tokens_per_s: 60 } },
    }),
    // One slow slot and a short queue: a standing backlog, and queue-full refusals once it fills.
    simPool('batch', 'tgi', {
      devices: [2],
      queue: { capacity: 16, full_policy: 'reject' },
      launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 40 } },
    }),
    simPool('stable', 'tgi', { devices: [3], model: { id: 'stable' } }),
    simPool('candidate', 'tgi', { model: { id: 'candidate' } }),
    simPool('retiring', 'llamacpp'),
  ],
});
const browser = await launchChromium();
let stop = false;
const load: Promise<void>[] = [];
try {
  await call(h.url, 'POST', '/v1/nodes/register', {
    headers: { authorization: `Bearer ${NODE_CREDENTIAL}` },
    body: { node_id: 'gpu-node-1', pools: [] },
  });
  for (const id of ['stable', 'candidate', 'stable-next']) {
    const source = join(dir, `${id}.gguf`);
    await writeFile(source, id);
    await call(h.url, 'POST', '/v1/catalog/models', { key: KEYS.ops, body: { id, source, tags: ['chat'] } });
    await call(h.url, 'POST', `/v1/catalog/models/${id}/state`, { key: KEYS.ops, body: { state: 'Active' } });
  }
  await call(h.url, 'POST', '/v1/catalog/models/candidate/state', {
    key: KEYS.ops,
    body: { state: 'Canary', canary_of: 'stable', percent: 10 },
  });
  await call(h.url, 'POST', '/v1/catalog/models/candidate/verify', { key: KEYS.ops });

  // Artifacts with lineage: a plan, two revisions of it, and a summary of the last.
  let parent: string | undefined;
  for (const [kind, content] of [
    ['plan', { steps: ['collect logs', 'bisect', 'patch'] }],
    ['plan', { steps: ['collect logs', 'bisect', 'patch', 'verify'] }],
    ['diff', { file: 'src/scheduler.ts', lines: 42 }],
    ['summary', { text: 'regression fixed in the scheduler' }],
  ] as const) {
    const r = await call(h.url, 'POST', '/v1/artifacts', {
      key: KEYS.alice,
      body: { kind, content, tags: ['incident-42'], ...(parent === undefined ? {} : { parent }) },
    });
    parent = (r.json as { id: string }).id;
  }

  // A steady mixed load: two tenants, both priorities, sessions with several turns.
  const sessions = Array.from({ length: 4 }, () => randomUUID());
  const worker = async (key: string, i: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const pool = ['chat-a', 'chat-a', 'chat-a', 'batch', 'stable'][(i + n) % 5]!;
      const t = task(pool, {
        engine: pool === 'chat-a' ? 'vllm' : 'tgi',
        priority: pool === 'batch' ? 'batch' : 'interactive',
        max_tokens: 20 + ((n * 37) % 120),
        deadline_ms: 600_000,
        ...(pool === 'chat-a' ? { session_id: sessions[(i + n) % sessions.length] } : {}),
      });
      const r = await call(h.url, 'POST', '/v1/tasks', { key, body: t }).catch(() => undefined);
      await new Promise((ok) => setTimeout(ok, r?.status === 202 ? 300 + ((n * 53) % 400) : 1_000));
    }
  };
  for (let i = 0; i < 6; i++) load.push(worker(i % 2 === 0 ? KEYS.alice : KEYS.bob, i));
  // Signed in before the warm-up: the console's charts gather their history meanwhile.
  const ops = await signIn(browser, h.url, KEYS.ops);
  const alice = await signIn(browser, h.url, KEYS.alice, 'tasks');
  await new Promise((ok) => setTimeout(ok, WARMUP_MS));
  await call(h.url, 'POST', '/v1/pools/retiring/drain', { key: KEYS.ops, body: { deadline_ms: 10_000 } });

  const shot = async (page: Page, name: string): Promise<void> => {
    // Past the first poll and a chart redraw.
    await page.waitForTimeout(2_500);
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    console.log(`wrote docs/console/${name}.png`);
  };

  const signin = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  await signin.goto(`${h.url}/ui/`);
  await shot(signin, 'sign-in');

  for (const view of ['fleet', 'queues', 'catalog', 'operations']) {
    await ops.goto(`${h.url}/ui/#/${view}`);
    await ops.getByRole('heading', { level: 1 }).waitFor();
    await shot(ops, view);
  }

  const long = task('chat-a', { engine: 'vllm', max_tokens: 1500, deadline_ms: 600_000 });
  await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: long });
  await alice.getByRole('button', { name: `Watch task ${long.task_id}` }).click();
  await until(async () => ((await alice.getByTestId('stream-text').textContent()) ?? '').length > 200);
  await shot(alice, 'tasks');
  await alice.goto(`${h.url}/ui/#/sessions`);
  await shot(alice, 'sessions');
  await alice.goto(`${h.url}/ui/#/artifacts`);
  await alice
    .getByRole('button', { name: /^Open artifact/ })
    .first()
    .click();
  await shot(alice, 'artifacts');
} finally {
  stop = true;
  await Promise.all(load);
  await browser.close();
  await h.close();
}
