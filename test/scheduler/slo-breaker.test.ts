/**
 * The SLO breaker (ORCH-3040) on a fake clock: its state machine, its hysteresis as properties
 * over arbitrary verdict sequences, its verdicts from the SLO window, and its configuration.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/config/resolve-config.js';
import {
  SloBreaker,
  sloVerdict,
  type SloBreakerSettings,
  type SloVerdict,
} from '../../src/scheduler/slo-breaker.js';
import { SloWindow } from '../../src/scheduler/slo-window.js';

const settings = (o: Partial<SloBreakerSettings> = {}): SloBreakerSettings => ({
  enabled: true,
  windowMs: 500,
  openAfterMs: 1_000,
  closeAfterMs: 2_000,
  minSamples: 5,
  ...o,
});
const BAD: SloVerdict = { violated: true, cause: 'interactive p95 time to first token 1500 ms > 900 ms' };
const GOOD: SloVerdict = { violated: false };

describe('SloBreaker state machine (ORCH-3040)', () => {
  it('opens only after the violation lasted open_after_ms without a break', () => {
    const b = new SloBreaker(settings(), 0);
    expect(b.observe(0, BAD)).toBeUndefined();
    expect(b.observe(900, BAD)).toBeUndefined();
    // One good look restarts the count.
    expect(b.observe(950, GOOD)).toBeUndefined();
    expect(b.observe(1_500, BAD)).toBeUndefined();
    expect(b.observe(2_499, BAD)).toBeUndefined();
    expect(b.state).toBe('closed');
    expect(b.observe(2_500, BAD)).toEqual({ from: 'closed', to: 'open', atMs: 2_500, cause: BAD.cause });
    expect(b.view()).toEqual({ enabled: true, state: 'open', sinceMs: 2_500, cause: BAD.cause });
  });

  it('sheds batch while open or recovering, never interactive', () => {
    const b = new SloBreaker(settings(), 0);
    expect(b.sheds('batch')).toBe(false);
    b.observe(0, BAD);
    b.observe(1_000, BAD);
    expect([b.state, b.sheds('batch'), b.sheds('interactive')]).toEqual(['open', true, false]);
    b.observe(1_100, GOOD);
    expect([b.state, b.sheds('batch'), b.sheds('interactive')]).toEqual(['recovering', true, false]);
  });

  it('closes only after the SLO was met for close_after_ms; a violation while recovering reopens it', () => {
    const b = new SloBreaker(settings(), 0);
    b.observe(0, BAD);
    b.observe(1_000, BAD);
    expect(b.retryAfterMs(1_000)).toBe(2_000);
    expect(b.observe(1_500, GOOD)).toMatchObject({ from: 'open', to: 'recovering' });
    expect(b.retryAfterMs(2_000)).toBe(1_500);
    expect(b.observe(3_000, BAD)).toMatchObject({ from: 'recovering', to: 'open', cause: BAD.cause });
    expect(b.observe(3_100, GOOD)).toMatchObject({ to: 'recovering' });
    expect(b.observe(5_099, GOOD)).toBeUndefined();
    expect(b.state).toBe('recovering');
    expect(b.observe(5_100, GOOD)).toEqual({ from: 'recovering', to: 'closed', atMs: 5_100, cause: null });
    expect(b.view()).toEqual({ enabled: true, state: 'closed', sinceMs: 5_100, cause: null });
    expect(b.sheds('batch')).toBe(false);
  });

  it('a single bad look never opens it; a single good look never closes it', () => {
    const b = new SloBreaker(settings(), 0);
    for (let t = 0; t <= 10_000; t += 100) b.observe(t, t === 5_000 ? BAD : GOOD);
    expect(b.state).toBe('closed');
    for (let t = 10_000; t <= 11_000; t += 100) b.observe(t, BAD);
    expect(b.state).toBe('open');
    for (let t = 11_100; t <= 20_000; t += 100) b.observe(t, t === 15_000 ? GOOD : BAD);
    expect(b.state).toBe('open');
  });

  it('a disabled breaker never opens', () => {
    const b = new SloBreaker(settings({ enabled: false }), 0);
    for (let t = 0; t <= 10_000; t += 100) expect(b.observe(t, BAD)).toBeUndefined();
    expect(b.view()).toMatchObject({ enabled: false, state: 'closed' });
    expect(b.sheds('batch')).toBe(false);
  });
});

/** Verdicts at non-decreasing times: gaps between looks, and whether each look saw a violation. */
const looks = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 700 }), violated: fc.boolean() }), {
  maxLength: 300,
});
const windows = fc.record({
  openAfterMs: fc.integer({ min: 1, max: 3_000 }),
  closeAfterMs: fc.integer({ min: 1, max: 3_000 }),
});

interface Step {
  readonly t: number;
  readonly violated: boolean;
  readonly shedding: boolean;
  readonly to: string | undefined;
}

function run(s: SloBreakerSettings, xs: readonly { dt: number; violated: boolean }[]): Step[] {
  const b = new SloBreaker(s, 0);
  let t = 0;
  return xs.map((x) => {
    t += x.dt;
    const change = b.observe(t, x.violated ? BAD : GOOD);
    return { t, violated: x.violated, shedding: b.state !== 'closed', to: change?.to };
  });
}

/** Start time of the run of equal verdicts that ends at step i. */
function runStart(steps: readonly Step[], i: number): number {
  const v = steps[i]!.violated;
  let j = i;
  while (j > 0 && steps[j - 1]!.violated === v) j--;
  return steps[j]!.t;
}

describe('SloBreaker hysteresis properties (ORCH-3040)', () => {
  it('never opens without a violation sustained for open_after_ms', () => {
    fc.assert(
      fc.property(windows, looks, (w, xs) => {
        const steps = run(settings(w), xs);
        steps.forEach((s, i) => {
          if (s.to !== 'open' || steps[i - 1]?.shedding === true) return;
          expect(s.violated).toBe(true);
          expect(s.t - runStart(steps, i)).toBeGreaterThanOrEqual(w.openAfterMs);
        });
      }),
    );
  });

  it('never closes without the SLO met for close_after_ms', () => {
    fc.assert(
      fc.property(windows, looks, (w, xs) => {
        const steps = run(settings(w), xs);
        steps.forEach((s, i) => {
          if (s.to !== 'closed') return;
          expect(s.violated).toBe(false);
          expect(s.t - runStart(steps, i)).toBeGreaterThanOrEqual(w.closeAfterMs);
        });
      }),
    );
  });

  it('flapping input does not flap shedding faster than the windows', () => {
    fc.assert(
      fc.property(windows, looks, (w, xs) => {
        const steps = run(settings(w), xs);
        let last: { t: number; shedding: boolean } = { t: 0, shedding: false };
        for (const s of steps) {
          if (s.shedding === last.shedding) continue;
          // Shedding starts at least open_after_ms after it stopped, stops at least
          // close_after_ms after it started.
          expect(s.t - last.t).toBeGreaterThanOrEqual(s.shedding ? w.openAfterMs : w.closeAfterMs);
          last = { t: s.t, shedding: s.shedding };
        }
      }),
    );
  });

  it('a violation sustained for open_after_ms does open it, and a good stretch of close_after_ms closes it', () => {
    fc.assert(
      fc.property(windows, looks, (w, xs) => {
        const steps = run(settings(w), xs);
        steps.forEach((s, i) => {
          const lasted = s.t - runStart(steps, i);
          if (s.violated && lasted >= w.openAfterMs) expect(s.shedding).toBe(true);
          if (!s.violated && lasted >= w.closeAfterMs) expect(s.shedding).toBe(false);
        });
      }),
    );
  });

  it('one slow or failed task among good ones never opens it (window_ms < open_after_ms)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 2_000 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 0, max: 200 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        (openAfterMs, windowSlack, badAt, failed, minSamples) => {
          const windowMs = Math.max(1, openAfterMs - windowSlack);
          const s = settings({ openAfterMs, windowMs, minSamples });
          let now = 0;
          const window = new SloWindow(256, { now: () => now });
          const b = new SloBreaker(s, 0);
          for (let i = 0; i < 400; i++, now += 25) {
            if (i === badAt) window.record('interactive', failed ? undefined : 5_000, !failed);
            else window.record('interactive', 100, true);
            const recent = window.snapshot({ sinceMs: now - windowMs }).interactive;
            b.observe(now, sloVerdict(recent, minSamples));
            expect(b.state).toBe('closed');
          }
        },
      ),
    );
  });
});

describe('SLO verdicts from the window', () => {
  const snapshot = (ttfts: readonly (number | undefined)[], failures = 0) => {
    const w = new SloWindow();
    for (const t of ttfts) w.record('interactive', t, true);
    for (let i = 0; i < failures; i++) w.record('interactive', undefined, false);
    return w.snapshot().interactive;
  };

  it('too few samples are no violation; slow first tokens and errors are, with a cause', () => {
    expect(sloVerdict(undefined, 1)).toEqual({ violated: false });
    expect(sloVerdict(snapshot([2_000, 2_000]), 3)).toEqual({ violated: false });
    expect(sloVerdict(snapshot([100, 100, 100]), 3)).toEqual({ violated: false });
    const slow = sloVerdict(snapshot([2_000, 2_000, 2_000]), 3);
    expect(slow).toEqual({
      violated: true,
      cause: 'interactive p95 time to first token 2000 ms > 900 ms over the last 3 interactive tasks',
    });
    const failing = sloVerdict(snapshot([100, 100, 100], 1), 3);
    expect(failing).toEqual({
      violated: true,
      cause: 'interactive error rate 25.0% > 0.5% over the last 4 interactive tasks',
    });
  });

  it('a clocked window judges only the samples recorded since the given time', () => {
    let now = 0;
    const w = new SloWindow(256, { now: () => now });
    w.record('interactive', 5_000, true);
    now = 1_000;
    w.record('interactive', 100, true);
    expect(w.snapshot().interactive?.samples).toBe(2);
    expect(w.snapshot({ sinceMs: 500 }).interactive).toMatchObject({ samples: 1, ttft_p95_ms: 100 });
    expect(w.snapshot({ sinceMs: 2_000 }).interactive).toBeUndefined();
  });
});

describe('slo_breaker configuration', () => {
  const yaml = (breaker: string) => `
profile: dev
pools:
  - id: p
    engine: vllm
    model: { id: p }
    ctx: 256
    devices: cpu
    launch: { worker: sim }
${breaker}
`;

  it('defaults: enabled, open after 60 s, close after 120 s, judging the last 30 s, 20 samples', () => {
    const { config } = parseConfig(yaml(''), { baseDir: '/tmp' });
    expect(config.pools[0]?.sloBreaker).toEqual({
      enabled: true,
      windowMs: 30_000,
      openAfterMs: 60_000,
      closeAfterMs: 120_000,
      minSamples: 20,
    });
  });

  it('takes every field, and refuses a window that is not shorter than open_after_ms', () => {
    const set = `    slo_breaker: { enabled: false, window_ms: 400, open_after_ms: 900, close_after_ms: 1500, min_samples: 3 }`;
    expect(parseConfig(yaml(set), { baseDir: '/tmp' }).config.pools[0]?.sloBreaker).toEqual({
      enabled: false,
      windowMs: 400,
      openAfterMs: 900,
      closeAfterMs: 1_500,
      minSamples: 3,
    });
    const bad = `    slo_breaker: { window_ms: 1000, open_after_ms: 1000 }`;
    let problems: readonly string[] = [];
    try {
      parseConfig(yaml(bad), { baseDir: '/tmp' });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(/^pools\[0\]\.slo_breaker\.window_ms: 1000 must be shorter/),
    ]);
  });
});
