/**
 * Integration harness: a real orchestrator on a free loopback port with real llama-server
 * replicas of the generated tiny model, plus small HTTP helpers that keep raw bodies for
 * framing and contract checks.
 */
import { randomUUID } from 'node:crypto';
import type { TracerProvider } from '@opentelemetry/api';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig, RawPool } from '../../src/config/schema.js';
import { findLlamaServer } from '../../src/engines/llamacpp/provision.js';
import { sha256Hex } from '../../src/http/auth.js';
import { startOrchestrator, type RunningOrchestrator } from '../../src/main.js';
import { writeTinyGguf } from '../../src/models/tiny-gguf.js';
import { createLogger } from '../../src/util/logger.js';
import { parseSse } from '../../src/util/sse-parser.js';
import { expectValidResponse, expectValidSseEvent } from './openapi-response.js';

export const TEST_CTX = 2048;

/** API keys of the test tenants. */
export const KEYS = {
  alice: 'alice-data-key',
  bob: 'bob-data-key',
  ops: 'ops-control-key',
} as const;

export const TEST_KEYS: NonNullable<NonNullable<RawConfig['auth']>['keys']> = [
  { id: 'alice', tenant: 'alice', sha256: sha256Hex(KEYS.alice), scopes: ['data'] },
  { id: 'bob', tenant: 'bob', sha256: sha256Hex(KEYS.bob), scopes: ['data'] },
  { id: 'ops', tenant: 'ops', sha256: sha256Hex(KEYS.ops), scopes: ['control'] },
];

/** The generated model, written once per machine (atomic; identical bytes every time). */
export async function tinyModelPath(): Promise<string> {
  const path = join(tmpdir(), 'llama-orch-test', `tiny-ctx${TEST_CTX}.gguf`);
  await writeTinyGguf(path, { ctx: TEST_CTX });
  return path;
}

export async function requireLlamaServer(): Promise<string> {
  const bin = await findLlamaServer({
    cacheDir: join(process.env['HOME'] ?? tmpdir(), '.cache', 'llama-orch'),
  });
  if (bin === undefined) {
    throw new Error(
      'no llama-server found: run `npx tsx scripts/ensure-llama-server.ts` (builds it once, ~9 min)',
    );
  }
  return bin;
}

export function tinyPool(id: string, modelPath: string, extra: Partial<RawPool> = {}): RawPool {
  return {
    id,
    engine: 'llamacpp',
    model: { id, path: modelPath },
    ctx: TEST_CTX,
    replicas: 1,
    devices: 'cpu',
    launch: { threads: 1, parallel: 1, cont_batching: false, startup_timeout_ms: 60_000 },
    ...extra,
  };
}

/** A pool of simulated replicas speaking `engine`'s dialect (fast tokens unless overridden). */
export function simPool(
  id: string,
  engine: RawPool['engine'],
  extra: Partial<RawPool> & { sim?: NonNullable<RawPool['launch']>['sim'] } = {},
): RawPool {
  const { sim, ...rest } = extra;
  return {
    id,
    engine,
    model: { id },
    ctx: TEST_CTX,
    replicas: 1,
    devices: 'cpu',
    launch: {
      worker: 'sim',
      parallel: 2,
      startup_timeout_ms: 30_000,
      health_interval_ms: 100,
      sim: { tokens_per_s: 2_000, ...sim },
    },
    ...rest,
  };
}

export interface CapturedLog {
  readonly lines: string[];
}

export interface Harness {
  readonly url: string;
  readonly running: RunningOrchestrator;
  readonly logs: CapturedLog;
  close(): Promise<void>;
}

export async function startHarness(
  raw: Omit<RawConfig, 'profile'>,
  opts: { waitReady?: boolean; processMetrics?: boolean; tracerProvider?: TracerProvider } = {},
): Promise<Harness> {
  if (raw.pools.some((p) => p.engine === 'llamacpp' && p.launch?.worker !== 'sim'))
    await requireLlamaServer();
  // Each orchestrator keeps its durable state in a fresh directory.
  const dataDir = raw.data_dir ?? (await mkdtemp(join(tmpdir(), 'llorch-data-')));
  const { config } = validateConfig({
    profile: 'dev',
    listen: { host: '127.0.0.1', port: 0 },
    ...raw,
    data_dir: dataDir,
  });
  const logs: CapturedLog = { lines: [] };
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination, redactPatterns: config.logging.redactPatterns });
  const running = await startOrchestrator(config, {
    logger,
    processMetrics: opts.processMetrics ?? false,
    ...(opts.tracerProvider ? { tracerProvider: opts.tracerProvider } : {}),
  });
  if (opts.waitReady !== false) await running.ready;
  return { url: running.url, running, logs, close: () => running.close(1_000) };
}

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

export async function call(
  url: string,
  method: string,
  path: string,
  opts: {
    key?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    /** The path is deliberately not part of the API (unknown-route tests). */
    undocumented?: boolean;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers['authorization'] = `Bearer ${opts.key}`;
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  // Every response the tests see must match the OpenAPI documents (status, headers, body).
  if (opts.undocumented !== true) {
    expectValidResponse({
      method,
      path,
      status: res.status,
      headers: Object.fromEntries(res.headers.entries()),
      body: json,
    });
  }
  return { status: res.status, headers: res.headers, text, json };
}

export interface StreamEvent {
  readonly event: string;
  readonly id: number;
  readonly data: Record<string, unknown>;
}

/** Reads a whole task stream (until the server closes it after the terminal event). */
export async function readStream(
  url: string,
  taskId: string,
  opts: { key?: string; lastEventId?: number; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; raw: string; events: StreamEvent[] }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers['authorization'] = `Bearer ${opts.key}`;
  if (opts.lastEventId !== undefined) headers['last-event-id'] = String(opts.lastEventId);
  const res = await fetch(`${url}/v1/tasks/${taskId}/stream`, { headers });
  const raw = await res.text();
  const events =
    res.status === 200
      ? parseSse(raw).map((r) => ({
          event: r.event ?? 'message',
          id: Number(r.id),
          data: JSON.parse(r.data) as Record<string, unknown>,
        }))
      : [];
  if (res.status !== 200) {
    expectValidResponse({
      method: 'GET',
      path: '/v1/tasks/{id}/stream',
      status: res.status,
      headers: Object.fromEntries(res.headers.entries()),
      body: JSON.parse(raw) as unknown,
    });
  }
  for (const e of events) expectValidSseEvent(e.event, e.data);
  return { status: res.status, headers: res.headers, raw, events };
}

/** A valid task body for the given model; override any field. */
export function task(
  modelRef: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> & { task_id: string } {
  return {
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: modelRef,
    engine: 'llamacpp',
    ctx: TEST_CTX,
    priority: 'interactive',
    prompt: 'Once upon a time',
    max_tokens: 16,
    deadline_ms: 60_000,
    ...extra,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `predicate` until true or the timeout. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}
