/** The rolling SLO snapshot: p95 of the time to first token and the error rate, over a window. */
import { describe, expect, it } from 'vitest';
import { SloWindow } from '../../src/scheduler/slo-window.js';

describe('SloWindow', () => {
  it('p95 by nearest rank over the recorded ttfts (unsorted, some missing); errors over all samples', () => {
    const w = new SloWindow(256);
    const ttfts = [50, 10, 40, 30, 20, 100, 90, 80, 70, 60];
    for (const t of ttfts) w.record('interactive', t, true);
    w.record('interactive', undefined, false);
    w.record('batch', 5, true);
    const s = w.snapshot();
    expect(s.interactive).toEqual({
      samples: 11,
      ttft_p95_ms: 100,
      error_rate: 1 / 11,
      target_ttft_p95_ms: 900,
      target_error_rate: 0.005,
      met: false,
    });
    expect(s.batch).toMatchObject({ samples: 1, ttft_p95_ms: 5, error_rate: 0, met: true });
  });

  it('sinceMs keeps the recent samples only; a priority with none is left out', () => {
    let now = 0;
    const w = new SloWindow(256, { now: () => now });
    w.record('batch', 1, false);
    for (let i = 1; i <= 20; i++) {
      now = i * 10;
      w.record('interactive', 2000 - i, i !== 20);
    }
    const s = w.snapshot({ sinceMs: 110 });
    expect(s.batch).toBeUndefined();
    expect(s.interactive).toMatchObject({ samples: 10, ttft_p95_ms: 1989, error_rate: 0.1, met: false });
    expect(w.snapshot().batch).toMatchObject({ samples: 1, error_rate: 1 });
  });
});
