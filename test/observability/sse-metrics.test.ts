/**
 * `metrics` frames (SPEC §2.2, ORCH-3100): periodic at the configured `sse.metrics_interval_ms`,
 * additive-only, carrying the planning fields a client acts on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchClient, type TaskRequest } from '../../src/index.js';
import { expectValidSseEvent } from '../support/openapi-response.js';
import { KEYS, simPool, startHarness, task, TEST_KEYS, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    sse: { metrics_interval_ms: 100 },
    pools: [simPool('paced', 'vllm', { launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 25 } } })],
  });
});
afterAll(() => h.close());

describe('metrics frames', () => {
  it('arrive at the configured period with queue, deadline, KV and ETA fields', async () => {
    const client = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice });
    // A first task lets the pool measure its decode rate (the ETA is omitted until then).
    for await (const _ of client.run(
      task('paced', { engine: 'vllm', max_tokens: 5 }) as unknown as TaskRequest,
    ));
    const t = task('paced', { engine: 'vllm', max_tokens: 30 }) as unknown as TaskRequest;
    const arrivals: number[] = [];
    const frames: Record<string, unknown>[] = [];
    for await (const ev of client.run(t)) {
      if (ev.event !== 'metrics') continue;
      arrivals.push(performance.now());
      frames.push(ev.data);
      expectValidSseEvent('metrics', ev.data);
    }
    // ~1.2 s of decode at 25 tokens/s: about a dozen frames at 100 ms.
    expect(frames.length).toBeGreaterThanOrEqual(5);
    const gaps = arrivals
      .slice(1)
      .map((a, i) => a - arrivals[i]!)
      .sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    expect(median).toBeGreaterThan(50);
    expect(median).toBeLessThan(300);
    for (const f of frames)
      expect(f).toMatchObject({
        queue_depth: expect.any(Number),
        queue_position: expect.any(Number),
        on_time_probability: expect.any(Number),
        kv_warmth: expect.any(Boolean),
        tokens_out: expect.any(Number),
        pool_id: 'paced',
      });
    // The ETA shrinks as the task decodes.
    const etas = frames.map((f) => f['eta_ms']).filter((x): x is number => typeof x === 'number');
    expect(etas.length).toBeGreaterThan(2);
    expect(etas.at(-1)!).toBeLessThan(etas[0]!);
  });
});
