/** `llorch sim` and `llorch dev --engine sim` as a user runs them: real processes, real ports. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/llorch.js';
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Starts a CLI command and resolves once `ready(output)` returns a value. */
function start<T>(
  args: string[],
  ready: (output: string) => T | undefined,
): Promise<{ child: ChildProcess; value: T; output: () => string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready:\n${output}`)), 30_000);
    const onData = (b: Buffer) => {
      output += b.toString('utf8');
      const value = ready(output);
      if (value !== undefined) {
        clearTimeout(timer);
        resolve({ child, value, output: () => output });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
}

describe('llorch sim', () => {
  it('serves one engine dialect on the port it prints, and stops on SIGTERM', async () => {
    const { child, value: port } = await start(
      ['sim', '--dialect', 'tgi', '--port', '0', '--model', 'm1', '--slots', '3'],
      (out) => {
        const line = out.split('\n').find((l) => l.includes('sim.listening'));
        return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
      },
    );
    const info = (await (await fetch(`http://127.0.0.1:${port}/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ model_id: 'm1', max_concurrent_requests: 3 });
    const gen = await fetch(`http://127.0.0.1:${port}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'hi', parameters: { max_new_tokens: 3, seed: 1 } }),
    });
    expect(((await gen.json()) as { generated_text: string }).generated_text).toHaveLength(3);
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('refuses an unknown dialect with usage', async () => {
    const r = await run(process.execPath, [CLI, 'sim', '--dialect', 'ollama']).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(r).toMatchObject({ code: 2 });
    expect((r as { stderr: string }).stderr).toContain(
      '--dialect must be one of llamacpp, vllm, tgi, triton',
    );
  });
});

describe('llorch dev --engine sim', () => {
  it('runs the dev profile on simulated replicas of the chosen dialect and serves llorch submit', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'llorch-devsim-'));
    const { child, value: url } = await start(
      [
        'dev',
        '--engine',
        'sim',
        '--sim-dialect',
        'vllm',
        '--sim-tokens-per-s',
        '500',
        '--sim-slots',
        '3',
        '--port',
        '0',
        '--data-dir',
        dataDir,
      ],
      (out) =>
        out.includes('"event":"pools.started"')
          ? /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1]
          : undefined,
    );
    const health = (await (await fetch(`${url}/v1/pools/sim-vllm/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({
      simulated: true,
      ready: true,
      metrics: { replicas_ready: 2, slots_total: 6 },
    });
    const { stdout } = await run(process.execPath, [
      CLI,
      'submit',
      '--url',
      url,
      '--engine',
      'vllm',
      '--model',
      'tiny',
      '--prompt',
      'Hello',
      '--max-tokens',
      '10',
    ]);
    expect(stdout).toMatch(/-- task [0-9a-f-]{36}: 10 tokens/);
    // The fleet at a glance, and pool operations, through the control plane.
    const status = await run(process.execPath, [CLI, 'status', '--url', url]);
    expect(status.stdout).toMatch(/^POOL\s+ENGINE\s+MODEL\s+READY/m);
    expect(status.stdout).toMatch(/sim-vllm\s+vllm\s+tiny\s+yes\s+r0:ready r1:ready\s+6\/6\s+0\s+simulated/);
    const h = await run(process.execPath, [CLI, 'pools', 'health', 'sim-vllm', '--url', url]);
    expect(JSON.parse(h.stdout)).toMatchObject({ pool_id: 'sim-vllm', ready: true, simulated: true });
    const d = await run(process.execPath, [
      CLI,
      'pools',
      'drain',
      'sim-vllm',
      '--deadline-ms',
      '100',
      '--url',
      url,
    ]);
    expect(JSON.parse(d.stdout)).toMatchObject({ pool_id: 'sim-vllm', operation: 'drain' });
    const bad = await run(process.execPath, [CLI, 'pools', 'reload', 'sim-vllm', '--url', url]).catch(
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(bad).toMatchObject({ code: 1 });
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
