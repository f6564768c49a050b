/**
 * Label cardinality budgets (SPEC §12, OC-METRICS-7102) hold per metric and label: values one
 * metric has seen do not use up the budget of another metric with the same label name.
 */
import { describe, expect, it } from 'vitest';
import { LABEL_BUDGETS } from '../../src/metrics/contract.js';
import { OrchMetrics, OVERFLOW_LABEL } from '../../src/metrics/metrics.js';
import { parseExposition, type Sample } from '../support/prom-parse.js';

const REASON_BUDGET = LABEL_BUDGETS['reason']!;
const POOL_BUDGET = LABEL_BUDGETS['pool_id']!;

async function samples(metrics: OrchMetrics, name: string): Promise<Sample[]> {
  return parseExposition(await metrics.render()).get(name)?.samples ?? [];
}

describe('label cardinality budgets', () => {
  it('tasks_rejected_total keeps reason=DEADLINE_UNMET after 16 other reasons were seen elsewhere (per-metric label budgets)', async () => {
    const metrics = new OrchMetrics({ processMetrics: false });
    const reasons = Array.from({ length: 20 }, (_, i) => `reason-${i}`);
    expect(reasons.length).toBeGreaterThan(REASON_BUDGET);
    for (const reason of reasons) metrics.inc('tasks_canceled_total', { engine: 'vllm', reason });
    metrics.inc('tasks_rejected_total', { engine: 'vllm', reason: 'DEADLINE_UNMET' }, 3);

    const rejected = await samples(metrics, 'tasks_rejected_total');
    expect(rejected).toEqual([
      { name: 'tasks_rejected_total', labels: { engine: 'vllm', reason: 'DEADLINE_UNMET' }, value: 3 },
    ]);

    const canceled = await samples(metrics, 'tasks_canceled_total');
    const byReason = new Map(canceled.map((s) => [s.labels['reason'], s.value]));
    for (const reason of reasons.slice(0, REASON_BUDGET)) expect(byReason.get(reason), reason).toBe(1);
    for (const reason of reasons.slice(REASON_BUDGET)) expect(byReason.has(reason), reason).toBe(false);
    expect(byReason.get(OVERFLOW_LABEL)).toBe(reasons.length - REASON_BUDGET);
  });

  it('a metric pushed past its pool_id budget leaves the pool_id values of other metrics intact', async () => {
    const metrics = new OrchMetrics({ processMetrics: false });
    const pools = Array.from({ length: POOL_BUDGET + 4 }, (_, i) => `pool-${i}`);
    for (const pool_id of pools) metrics.set('queue_capacity', { engine: 'vllm', pool_id }, 8);
    // Pools the first metric only saw past its budget are still new to the others.
    const late = pools.slice(POOL_BUDGET);
    for (const pool_id of late)
      metrics.inc('pool_restarts_total', { engine: 'vllm', pool_id, replica_id: 'r0' });
    for (const pool_id of late) metrics.set('pool_ready', { engine: 'vllm', pool_id }, 1);

    const capacity = (await samples(metrics, 'queue_capacity')).map((s) => s.labels['pool_id']);
    expect(capacity).toContain(OVERFLOW_LABEL);
    expect(capacity.filter((p) => p !== OVERFLOW_LABEL)).toEqual(pools.slice(0, POOL_BUDGET));

    for (const name of ['pool_restarts_total', 'pool_ready']) {
      const seen = (await samples(metrics, name)).map((s) => s.labels['pool_id']);
      expect(seen, name).toEqual(late);
    }
  });
});
