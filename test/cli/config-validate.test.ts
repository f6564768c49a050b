/** `llorch config validate FILE` through the built CLI (the real binary users run). */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/llorch.js';

async function llorch(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('llorch config validate', () => {
  it('accepts the example configs', async () => {
    for (const f of ['examples/dev.yaml', 'examples/prod-2gpu.yaml']) {
      const r = await llorch('config', 'validate', f);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`${f}: valid`);
    }
  });

  it('rejects unknown fields with their path and exits non-zero', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-cfg-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      'profile: dev\npools:\n  - id: a\n    engine: llamacpp\n    model: { id: a, path: a.gguf }\n    ctx: 64\n    devices: cpu\n    replicaz: 2\n',
    );
    const r = await llorch('config', 'validate', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pools[0].replicaz: unknown field (config_mode: strict)');
  });

  it('refuses a CPU pool in the prod profile (ORCH-1101)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-cfg-'));
    const file = join(dir, 'cpu.yaml');
    await writeFile(
      file,
      'pools:\n  - id: a\n    engine: llamacpp\n    model: { id: a, path: a.gguf }\n    ctx: 64\n    devices: cpu\n',
    );
    const r = await llorch('config', 'validate', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ORCH-1101/);
  });
});
