/** `llorch dev` and `llorch submit` as a user runs them: real processes, real ports, real engines. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireLlamaServer } from '../support/harness.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/llorch.js';
const KEY = 'dev-secret-key';
let dev: ChildProcess;
let url = '';
let output = '';

beforeAll(async () => {
  await requireLlamaServer();
  const dataDir = await mkdtemp(join(tmpdir(), 'llorch-dev-'));
  dev = spawn(
    process.execPath,
    [CLI, 'dev', '--port', '0', '--replicas', '1', '--api-key', KEY, '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`llorch dev did not become ready:\n${output}`)), 60_000);
    const onData = (b: Buffer) => {
      output += b.toString('utf8');
      url ||= /listening on (http:\/\/[\d.:]+)/.exec(output)?.[1] ?? '';
      if (url && output.includes('"event":"pools.started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    dev.stdout?.on('data', onData);
    dev.stderr?.on('data', onData);
    dev.on('exit', (code) => reject(new Error(`llorch dev exited with ${code}:\n${output}`)));
  });
});

afterAll(() => {
  if (dev.exitCode === null) dev.kill('SIGKILL');
});

describe('llorch dev + llorch submit', () => {
  it('starts in the dev profile with a loud CPU warning and the generated model', () => {
    expect(output).toContain('DEV PROFILE');
    expect(output).toContain('"replicas":["tiny-r0=ready"]');
  });

  it('submit streams tokens and prints a one-line summary', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'submit',
      '--url',
      url,
      '--api-key',
      KEY,
      '--prompt',
      'Hello',
      '--max-tokens',
      '12',
    ]);
    expect(stdout).toMatch(
      /-- task [0-9a-f-]{36}: 12 tokens, queue wait \d+ ms, time to first token [\d.]+ ms, \d+ tokens\/s/,
    );
  });

  it('submit --json prints the raw events', async () => {
    const { stdout } = await run(process.execPath, [
      CLI,
      'submit',
      '--url',
      url,
      '--api-key',
      KEY,
      '--prompt',
      'Hi',
      '--max-tokens',
      '3',
      '--json',
    ]);
    const events = stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { event: string }).event)
      .filter((e) => e !== 'metrics');
    expect(events).toEqual(['accepted', 'started', 'token', 'token', 'token', 'end']);
  });

  it('submit without the key reports the 401 and exits 1', async () => {
    const r = await run(process.execPath, [CLI, 'submit', '--url', url, '--prompt', 'Hi']).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(r).toMatchObject({ code: 1 });
    expect((r as { stderr: string }).stderr).toContain('401 UNAUTHORIZED');
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => dev.on('exit', (code) => r(code)));
    dev.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('orchestratord stopped');
  });
});
