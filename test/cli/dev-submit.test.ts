/** `llorch dev` and `llorch submit` as a user runs them: real processes, real ports, real engines. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireLlamaServer } from '../support/harness.js';
import { LLORCH_CLI, startLlorchDev, type LlorchDev } from '../support/llorch-dev.js';

const run = promisify(execFile);
const CLI = LLORCH_CLI;
const KEY = 'dev-secret-key';
let dev: LlorchDev;
let url = '';
let output = '';

beforeAll(async () => {
  await requireLlamaServer();
  dev = await startLlorchDev(['--replicas', '1', '--api-key', KEY], 60_000);
  url = dev.url;
  output = dev.output();
});

afterAll(async () => {
  await dev?.stop();
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
    expect(await dev.stop()).toBe(0);
    expect(dev.output()).toContain('orchestratord stopped');
  });
});
