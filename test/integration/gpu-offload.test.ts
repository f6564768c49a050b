/**
 * GPU or nothing in prod (ORCH-1101, ORCH-3018): a llama.cpp GPU pool whose engine reports no
 * layers offloaded to the GPU is refused after its self-test. The engine is the REAL CPU build of
 * llama-server on the tiny model, on a host whose (stand-in) nvidia-smi reports GPUs: exactly an
 * operator who installed a CPU build on a GPU host.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { startOrchestrator, type RunningOrchestrator } from '../../src/main.js';
import { llamaServerArgs } from '../../src/pool/engine-launcher.js';
import { createLogger } from '../../src/util/logger.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  requireLlamaServer,
  task,
  tinyModelPath,
  tinyPool,
} from '../support/harness.js';

const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;
process.env['FAKE_NVIDIA_SMI_FILE'] = new URL(
  '../fixtures/nvidia-smi/two-gpus.csv',
  import.meta.url,
).pathname;

let running: RunningOrchestrator;
let binary: string;
const logs: string[] = [];

beforeAll(async () => {
  binary = await requireLlamaServer();
  const { config } = validateConfig({
    profile: 'prod',
    listen: { host: '127.0.0.1', port: 0 },
    data_dir: await mkdtemp(join(tmpdir(), 'llorch-offload-')),
    auth: { keys: TEST_KEYS },
    // The configured binary is the cached CPU build (no build is chosen or started here).
    engines: { nvidia_smi_path: STAND_IN, llama_server_path: binary },
    // The generated model is not catalogued: this test is about the offload check, not trust.
    catalog: { trust_policy: 'permissive' },
    pools: [{ ...tinyPool('gpu', await tinyModelPath()), devices: [0] }],
  });
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  running = await startOrchestrator(config, {
    logger: createLogger({ level: 'info', destination }),
    processMetrics: false,
  });
  await running.ready;
});
afterAll(async () => {
  await running?.close(1_000);
});

type Health = { ready: boolean; last_error: string | null; replicas: { state: string; cause?: string }[] };

describe('GPU offload check (ORCH-1101, ORCH-3018)', () => {
  it('prod refuses a GPU pool whose llama-server offloaded no layers, naming the binary', async () => {
    const h = (await call(running.url, 'GET', '/v1/pools/gpu/health', { key: KEYS.ops })).json as Health;
    expect(h.ready).toBe(false);
    expect(h.replicas.map((r) => r.state)).toEqual(['unready']);
    expect(h.last_error).toMatch(/^no layers offloaded to the GPU \(CPU build\?\)/);
    // What the engine itself said, kept from its startup output.
    expect(h.last_error).toContain('no usable GPU found, --gpu-layers option will be ignored');
    expect(h.last_error).toContain(`launch.gpu_layers: 999`);
    expect(h.last_error).toContain(`binary ${binary}`);
    expect(h.last_error).toContain('ORCH-1101, ORCH-3018');

    const r = await call(running.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('gpu') });
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ code: 'POOL_UNAVAILABLE' });
  });

  it('is counted, is not retried, and leaves no engine running', async () => {
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    expect(metrics).toMatch(
      /engine_failures_total\{engine="llamacpp",pool_id="gpu",reason="gpu_offload"\} 1/,
    );
    expect(metrics).not.toMatch(/pool_restarts_total\{[^}]*pool_id="gpu"/);
    expect(logs.some((l) => l.includes('"event":"replica.restart_scheduled"'))).toBe(false);
    const sup = running.orchestrator.pools.find((p) => p.id === 'gpu')?.supervisor as
      { processOf?: (id: string) => { exit: unknown } | undefined } | undefined;
    expect(sup?.processOf?.('gpu-r0')?.exit).toBeDefined();
  });

  it('runs llama-server so that it prints its offload report, and logs the binary it serves', () => {
    expect(logs.some((l) => l.includes('"event":"engine.binary"') && l.includes(binary))).toBe(true);
    const gpu = validateConfig({
      profile: 'prod',
      pools: [{ ...tinyPool('g', '/m.gguf'), devices: [0] }],
    }).config.pools[0];
    const cpu = validateConfig({ profile: 'dev', pools: [tinyPool('c', '/m.gguf')] }).config.pools[0];
    expect(gpu && llamaServerArgs(gpu, 1).join(' ')).toMatch(/ -lv 4\b/);
    expect(cpu && llamaServerArgs(cpu, 1)).not.toContain('-lv');
  });
});
