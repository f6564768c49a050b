/**
 * One engine process under test, started the way a pool starts it: the real llama-server for
 * llama.cpp, the engine simulator in their dialect for vLLM, TGI and Triton (which need GPUs).
 */
import { validateConfig } from '../../src/config/load-config.js';
import type { RawPool } from '../../src/config/schema.js';
import type { ResolvedPool } from '../../src/config/resolved-config.js';
import type { Engine } from '../../src/domain/types.js';
import type { EngineAdapter } from '../../src/engines/adapter.js';
import { nativeLauncher, simLauncher, type EngineLauncher } from '../../src/pool/engine-launcher.js';
import { EngineProcess } from '../../src/pool/engine-process.js';
import { freePort } from '../../src/pool/free-port.js';
import { createLogger } from '../../src/util/logger.js';
import { requireLlamaServer } from './harness.js';

export interface EngineUnderTest {
  readonly engine: Engine;
  readonly pool: ResolvedPool;
  readonly adapter: EngineAdapter;
  readonly process: EngineProcess;
  /** Base URL of the process (simulators take fault injection at `/__sim/faults`). */
  readonly baseUrl: string;
  readonly simulated: boolean;
  stop(): Promise<void>;
}

export function resolvePool(raw: RawPool): ResolvedPool {
  const { config } = validateConfig({ profile: 'dev', pools: [raw] });
  const pool = config.pools[0];
  if (!pool) throw new Error('no pool');
  return pool;
}

export async function startEngine(raw: RawPool, replicaIndex = 0): Promise<EngineUnderTest> {
  const pool = resolvePool(raw);
  const launcher: EngineLauncher =
    pool.launch.worker === 'sim'
      ? simLauncher(pool)
      : nativeLauncher({ pool, binary: await requireLlamaServer(), modelDigest: 'sha256:test' });
  const ports: number[] = [];
  while (ports.length < launcher.portCount) {
    const p = await freePort('127.0.0.1');
    if (!ports.includes(p)) ports.push(p);
  }
  const cmd = launcher.command(replicaIndex, ports);
  const proc = new EngineProcess({ ...cmd, logger: createLogger({ level: 'silent' }) });
  const adapter = launcher.adapter(ports);
  return {
    engine: pool.engine,
    pool,
    adapter,
    process: proc,
    baseUrl: `http://127.0.0.1:${ports[0] ?? 0}`,
    simulated: launcher.simulated,
    stop: async () => {
      await proc.stop(1_000);
      await adapter.close();
    },
  };
}

/** Sets simulator faults (`{}` clears them). */
export async function setFaults(e: EngineUnderTest, faults: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${e.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  if (res.status !== 200) throw new Error(`faults: ${res.status}`);
}
