/**
 * Durable tasks (SPEC §17.1) and idempotent resubmission (SPEC §17 §2.1) across a `kill -9` of a
 * real `llorch serve` on simulated pools, restarted on the same data directory: queued tasks are
 * queued again and complete, the running one ends `WORKER_RESET` on its restarted stream (with
 * or without `Last-Event-ID`), and used ids are answered with their original acceptance or 409.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { sha256Hex } from '../../src/http/auth.js';
import { call, readStream, simPool, task } from '../support/harness.js';

const CLI = 'dist/src/cli/llorch.js';
const KEY = 'durable-tasks-key-1';
const started: ChildProcess[] = [];

const exited = (child: ChildProcess): Promise<unknown> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', r));

afterAll(async () => {
  for (const child of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(started.map(exited));
});

/** Starts `llorch serve` and resolves with its URL once it listens and its pools started. */
function serve(file: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve not ready:\n${out}`)), 60_000);
    const onData = (b: Buffer) => {
      out += b.toString('utf8');
      const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1];
      if (url && out.includes('"event":"pools.started"')) {
        clearTimeout(timer);
        resolve({ child, url });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${out}`)));
  });
}

/** Reads a stream until its first `token` event, then leaves; the id of the last event read. */
async function firstToken(url: string, taskId: string): Promise<number> {
  const res = await fetch(`${url}/v1/tasks/${taskId}/stream`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  const reader = res.body?.getReader();
  if (!reader) throw new Error('no stream body');
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream of ${taskId} ended without a token:\n${text}`);
    text += decoder.decode(value, { stream: true });
    const token = /event: token\nid: (\d+)\n/.exec(text);
    if (token) {
      await reader.cancel();
      return Number(token[1]);
    }
  }
}

/** The raw text of a stream until the server ends it. */
async function rawStream(url: string, taskId: string): Promise<string> {
  const res = await fetch(`${url}/v1/tasks/${taskId}/stream`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  return res.text();
}

/** Resolves once the stream includes `what`, with the stream's whole text (once it ends) in `rest`. */
async function streamUntil(url: string, taskId: string, what: string): Promise<{ rest: Promise<string> }> {
  const res = await fetch(`${url}/v1/tasks/${taskId}/stream`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  const reader = res.body?.getReader();
  if (!reader) throw new Error('no stream body');
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes(what)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream of ${taskId} ended before ${what}:\n${text}`);
    text += decoder.decode(value, { stream: true });
  }
  const rest = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { rest };
}

async function config(dir: string, tokensPerS: number, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, 'config.yaml');
  const pool = simPool('d', 'llamacpp', { sim: { tokens_per_s: tokensPerS } });
  await writeFile(
    file,
    stringify({
      profile: 'dev',
      listen: { host: '127.0.0.1', port: 0 },
      data_dir: dir,
      auth: { keys: [{ id: 'app', tenant: 'durable', sha256: sha256Hex(KEY), scopes: ['data'] }] },
      // One slot: one task runs, the others wait in the queue.
      pools: [{ ...pool, launch: { ...pool.launch, parallel: 1 } }],
      ...extra,
    }),
  );
  return file;
}

describe('durable tasks across kill -9 (SPEC §17.1)', () => {
  it('queued tasks complete after the restart, the running one ends WORKER_RESET, used ids stay idempotent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-tasks-'));
    // Slow decoding first: the long task is certainly still running when the process dies.
    const first = await serve(await config(dir, 20));
    const post = (url: string, body: unknown) => call(url, 'POST', '/v1/tasks', { key: KEY, body });
    const deadline = { deadline_ms: 3_600_000 };

    const done = task('d', { max_tokens: 2, ...deadline });
    const doneAccepted = await post(first.url, done);
    expect(doneAccepted.status).toBe(202);
    const doneStream = await readStream(first.url, done.task_id, { key: KEY });
    expect(doneStream.events.at(-1)?.event).toBe('end');

    const running = task('d', { max_tokens: 2_000, ...deadline });
    const queued = [task('d', { max_tokens: 3, ...deadline }), task('d', { max_tokens: 3, ...deadline })];
    const runningAccepted = await post(first.url, running);
    expect(runningAccepted.status).toBe(202);
    const lastSeen = await firstToken(first.url, running.task_id);
    const queuedAccepted = [];
    for (const q of queued) queuedAccepted.push(await post(first.url, q));
    expect(queuedAccepted.map((r) => r.status)).toEqual([202, 202]);

    first.child.kill('SIGKILL');
    await exited(first.child);

    const second = await serve(await config(dir, 2_000));
    try {
      // Queued before the crash: queued again under the same ids, and they complete. Their new
      // run's ids start above every id of the first run, so a client resuming with an id it read
      // before the crash gets the whole new run, not a stream that skips its first tokens.
      for (const q of queued) {
        const s = await readStream(second.url, q.task_id, { key: KEY });
        expect(s.status).toBe(200);
        const kinds = s.events.map((e) => e.event).filter((e) => e !== 'metrics');
        expect(kinds).toEqual(['started', 'token', 'token', 'token', 'end']);
        expect(s.events[0]?.id).toBe(2 ** 32 + 1);
        const tokens = (r: typeof s) => r.events.filter((e) => e.event === 'token').map((e) => e.data['i']);
        for (const oldId of [1, 3, 5]) {
          const resumed = await readStream(second.url, q.task_id, { key: KEY, lastEventId: oldId });
          expect(resumed.events.map((e) => e.event).filter((e) => e !== 'metrics')).toEqual(kinds);
          expect(tokens(resumed)).toEqual([0, 1, 2]);
        }
        // An id of the new run resumes after it, as on any stream.
        const firstToken = s.events.find((e) => e.event === 'token');
        const after = await readStream(second.url, q.task_id, {
          key: KEY,
          lastEventId: Number(firstToken?.id),
        });
        expect(tokens(after)).toEqual([1, 2]);
      }
      // Running at the crash: a typed terminal error on its restarted stream, whatever
      // Last-Event-ID the client carries from the stream it read before.
      for (const lastEventId of [undefined, lastSeen, lastSeen + 50]) {
        const s = await readStream(second.url, running.task_id, {
          key: KEY,
          ...(lastEventId === undefined ? {} : { lastEventId }),
        });
        expect(s.status).toBe(200);
        const kinds = s.events.map((e) => e.event);
        // The restarted stream is `started` and the error, with ids after every id of the first
        // run: whatever id the client read before, it gets both.
        expect(kinds).toEqual(['started', 'error']);
        expect(s.events.map((e) => e.id)).toEqual([2 ** 32 + 1, 2 ** 32 + 2]);
        expect(s.events.at(-1)?.data).toMatchObject({ code: 'WORKER_RESET', retriable: true });
        expect(String(s.events.at(-1)?.data['message'])).toMatch(/orchestrator restarted/);
      }
      const resumed = await readStream(second.url, running.task_id, { key: KEY, lastEventId: 2 ** 32 + 1 });
      expect(resumed.events.map((e) => e.event)).toEqual(['error']);
      // Resubmissions after the restart: the original acceptance, 200 once ended.
      for (const [body, original] of [
        [done, doneAccepted],
        [running, runningAccepted],
        [queued[0], queuedAccepted[0]],
      ] as const) {
        const again = await post(second.url, body);
        expect(again.status).toBe(200);
        expect(again.json).toEqual(original?.json);
      }
      // Any other request under a used id is a conflict, and nothing runs for it.
      const conflict = await post(second.url, { ...running, max_tokens: 1 });
      expect(conflict.status).toBe(409);
      expect(conflict.json).toMatchObject({ code: 'CONFLICT' });
      // The events of a task that ended before the crash were not journaled: 404, id still used.
      expect((await readStream(second.url, done.task_id, { key: KEY })).status).toBe(404);
      expect((await call(second.url, 'POST', `/v1/tasks/${done.task_id}/cancel`, { key: KEY })).status).toBe(
        204,
      );
    } finally {
      second.child.kill('SIGTERM');
      await exited(second.child);
    }
  }, 180_000);

  it('a resubmission with the same body while the task is queued or running gets the same 202 answer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-idem-'));
    const { child, url } = await serve(await config(dir, 20));
    try {
      const body = task('d', { max_tokens: 200, deadline_ms: 3_600_000 });
      const a = await call(url, 'POST', '/v1/tasks', { key: KEY, body });
      expect(a.status).toBe(202);
      // Key order is not part of the request: the canonical forms are compared.
      const reordered = Object.fromEntries(Object.entries(body).reverse());
      const b = await call(url, 'POST', '/v1/tasks', { key: KEY, body: reordered });
      expect(b.status).toBe(202);
      expect(b.json).toEqual(a.json);
      expect(
        (await call(url, 'POST', '/v1/tasks', { key: KEY, body: { ...body, prompt: 'other' } })).status,
      ).toBe(409);
      expect((await call(url, 'POST', `/v1/tasks/${body.task_id}/cancel`, { key: KEY })).status).toBe(204);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  }, 120_000);

  it('a graceful shutdown keeps queued tasks for the next start; an OpenAI request queued behind ends 503', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-durable-sigterm-'));
    // drain_ms 0: the running task ends at the signal, so only the queued ones are in question.
    const first = await serve(await config(dir, 20, { shutdown: { drain_ms: 0 } }));
    const post = (body: unknown) => call(first.url, 'POST', '/v1/tasks', { key: KEY, body });
    const running = task('d', { max_tokens: 2_000, deadline_ms: 3_600_000 });
    expect((await post(running)).status).toBe(202);
    await firstToken(first.url, running.task_id);
    const runningEnd = rawStream(first.url, running.task_id);
    const queued = task('d', { max_tokens: 3, deadline_ms: 3_600_000 });
    expect((await post(queued)).status).toBe(202);
    const queuedRead = await streamUntil(first.url, queued.task_id, 'event: started');
    // An OpenAI-compatible request queued behind: its answer is this open response.
    const openai = fetch(`${first.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'd', prompt: 'hello', max_tokens: 3 }),
    });
    // Wait until it is queued: the pool's queue depth counts it.
    for (;;) {
      const m = await call(first.url, 'GET', '/metrics', { key: KEY });
      const depth = [...String(m.text).matchAll(/^queue_depth\{[^}]*pool_id="d"[^}]*\} (\d+)$/gm)].reduce(
        (n, x) => n + Number(x[1]),
        0,
      );
      if (depth === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    first.child.kill('SIGTERM');
    await exited(first.child);
    expect(await runningEnd).toMatch(/event: error\n[^]*"code":"POOL_UNAVAILABLE"/);
    // The queued task's stream ends without a terminal event: the task lives on.
    const before = await queuedRead.rest;
    expect(before).not.toMatch(/event: (end|error)/);
    expect(before).toMatch(/reconnect with Last-Event-ID/);
    const lastId = Math.max(...[...before.matchAll(/\nid: (\d+)\n/g)].map((m) => Number(m[1])));
    const answer = await openai;
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('POOL_UNAVAILABLE');

    const second = await serve(await config(dir, 2_000));
    try {
      const s = await readStream(second.url, queued.task_id, { key: KEY, lastEventId: lastId });
      expect(s.status).toBe(200);
      expect(s.events.map((e) => e.event).filter((e) => e !== 'metrics')).toEqual([
        'started',
        'token',
        'token',
        'token',
        'end',
      ]);
      // Nothing else was taken back: the running task and the OpenAI request ended before.
      expect((await readStream(second.url, running.task_id, { key: KEY })).status).toBe(404);
    } finally {
      second.child.kill('SIGTERM');
      await exited(second.child);
    }
  }, 180_000);
});
