import { describe, expect, it } from 'vitest';
import { classifyFailure } from '../../src/pool/failure-class.js';
import { RestartPolicy } from '../../src/pool/restart-policy.js';

describe('classifyFailure', () => {
  const exit = { code: 1, signal: null };
  it.each([
    ['CUDA error: out of memory', 'vram_oom'],
    [
      'ggml_backend_cuda_buffer_type_alloc_buffer: allocating 4096.00 MiB on device 0: cudaMalloc failed: out of memory',
      'vram_oom',
    ],
    ['terminate called after throwing an instance of std::bad_alloc', 'host_oom'],
    ['NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.', 'driver_reset'],
    ['CUDA error: uncorrectable ECC error encountered', 'ecc'],
    ['CUDA error: an illegal memory access was encountered', 'cuda_error'],
    ['segmentation fault', 'exit'],
  ])('%s → %s', (line, kind) => {
    expect(classifyFailure(exit, ['loading model', line]).kind).toBe(kind);
  });
  it('a silent SIGKILL is the host OOM killer', () => {
    expect(classifyFailure({ code: null, signal: 'SIGKILL' }, []).kind).toBe('host_oom');
  });
});

describe('RestartPolicy', () => {
  const policy = () =>
    new RestartPolicy({ baseMs: 100, maxMs: 1_000, maxFailures: 3, windowMs: 10_000, cooldownMs: 5_000 });
  it('backs off exponentially with jitter, then opens the breaker, and closes on ready', () => {
    const p = policy();
    expect(p.onFailure(0, () => 1)).toEqual({ action: 'restart', delayMs: 100 });
    expect(p.onFailure(1, () => 0)).toEqual({ action: 'restart', delayMs: 100 }); // 200 × [0.5, 1]
    expect(p.onFailure(2, () => 0.5)).toEqual({ action: 'open', delayMs: 5_000, failures: 3 });
    expect(p.open).toBe(true);
    // Half-open attempt fails: stays open.
    expect(p.onFailure(6_000)).toMatchObject({ action: 'open' });
    p.onReady(7_000);
    expect(p.open).toBe(false);
    // Stayed up past the stable period: recovered, the backoff starts over.
    expect(p.onFailure(20_000, () => 1)).toEqual({ action: 'restart', delayMs: 100 });
  });
  it('a replica that falls over right after Ready is still in the same crash loop', () => {
    const p = policy();
    p.onFailure(0);
    p.onReady(100);
    p.onFailure(200);
    p.onReady(300);
    expect(p.onFailure(400).action).toBe('open');
  });
  it('failures outside the window do not count toward the breaker', () => {
    const p = policy();
    p.onFailure(0);
    p.onFailure(20_000);
    expect(p.onFailure(40_000).action).toBe('restart');
  });
});
