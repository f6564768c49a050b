/**
 * Outlier ejection restarts the engine (SPEC §17 §5), in process: three engine failures in a row
 * eject the replica and ask its supervisor for exactly one restart however many more failures
 * follow meanwhile; once the supervisor reports it back (ready after its self-test), the ejection
 * ends and the replica takes work again.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { FakeSupervisor, StepAdapter } from '../support/fake-pool.js';

class RestartingSupervisor extends FakeSupervisor {
  #release: ((back: boolean) => void) | undefined;
  override restartReplica(replicaId: string, cause: string): Promise<boolean> {
    void super.restartReplica(replicaId, cause);
    return new Promise((resolve) => (this.#release = resolve));
  }
  comeBack(back: boolean): void {
    this.#release?.(back);
  }
}

function runtime(): { pool: PoolRuntime; sup: RestartingSupervisor } {
  const { config } = validateConfig({
    profile: 'dev',
    pools: [{ id: 'p', engine: 'llamacpp', model: { id: 'm', path: '/dev/null' }, ctx: 512, devices: 'cpu' }],
  });
  const cfg = config.pools[0];
  if (!cfg) throw new Error('no pool');
  const sup = new RestartingSupervisor('p', [new StepAdapter(), new StepAdapter()]);
  const pool = new PoolRuntime(cfg, sup, {
    weights: { interactive: 8, batch: 1 },
    tenantWeight: () => 1,
    mode: 'wfq',
    deadlineSlackTokens: 0,
    clock: { now: () => Date.now() },
  });
  return { pool, sup };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('an ejected replica', () => {
  it('is restarted once, and placed again once its supervisor reports it back', async () => {
    const { pool, sup } = runtime();
    pool.recordOutcome('p-r0', 'failed');
    pool.recordOutcome('p-r0', 'failed');
    expect(sup.restarts).toEqual([]);
    pool.recordOutcome('p-r0', 'failed');
    expect(pool.ejected()).toEqual(['p-r0']);
    expect(sup.restarts).toEqual([{ replicaId: 'p-r0', cause: 'ejected after 3 failed tasks in a row' }]);
    expect(pool.loads().map((l) => l.id)).toEqual(['p-r1']);
    // Tasks still running on the old engine fail as it is killed: no second restart.
    for (let k = 0; k < 6; k++) pool.recordOutcome('p-r0', 'failed');
    expect(sup.restarts).toHaveLength(1);
    sup.comeBack(true);
    await settle();
    expect(pool.ejected()).toEqual([]);
    expect(pool.loads().map((l) => l.id)).toEqual(['p-r0', 'p-r1']);
  });

  it('stays ejected when the restart did not bring it back, and a later run of failures asks again', async () => {
    const { pool, sup } = runtime();
    for (let k = 0; k < 3; k++) pool.recordOutcome('p-r0', 'failed');
    sup.comeBack(false);
    await settle();
    expect(pool.ejected()).toEqual(['p-r0']);
    for (let k = 0; k < 3; k++) pool.recordOutcome('p-r0', 'failed');
    expect(sup.restarts).toHaveLength(2);
  });
});
