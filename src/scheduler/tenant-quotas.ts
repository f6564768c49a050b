/**
 * Per-tenant quotas enforced before enqueue (SPEC §3.3): `max_concurrent` (queued + running
 * tasks) and `rps` with a burst bucket. Pure: the clock is passed in.
 */
import { TokenBucket } from './token-bucket.js';

export interface TenantQuota {
  readonly maxConcurrent: number | undefined;
  readonly rps: number | undefined;
  readonly burst: number;
}

export type QuotaRefusal =
  | { readonly kind: 'max_concurrent'; readonly limit: number }
  | { readonly kind: 'rps'; readonly limit: number; readonly retryAfterMs: number };

export class TenantQuotas {
  readonly #quotas: ReadonlyMap<string, TenantQuota>;
  readonly #active = new Map<string, number>();
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(quotas: ReadonlyMap<string, TenantQuota>) {
    this.#quotas = quotas;
  }

  active(tenant: string): number {
    return this.#active.get(tenant) ?? 0;
  }

  /** Slots held across all tenants. */
  get held(): number {
    let n = 0;
    for (const v of this.#active.values()) n += v;
    return n;
  }

  /** Checks both quotas and, when they pass, charges the rate bucket. */
  check(tenant: string, now: number): QuotaRefusal | undefined {
    const q = this.#quotas.get(tenant);
    if (!q) return undefined;
    if (q.maxConcurrent !== undefined && this.active(tenant) >= q.maxConcurrent)
      return { kind: 'max_concurrent', limit: q.maxConcurrent };
    if (q.rps !== undefined) {
      let bucket = this.#buckets.get(tenant);
      if (!bucket) this.#buckets.set(tenant, (bucket = new TokenBucket(q.rps, q.burst, now)));
      const r = bucket.take(now);
      if (!r.ok) return { kind: 'rps', limit: q.rps, retryAfterMs: r.retryAfterMs };
    }
    return undefined;
  }

  /** A submission that passed `check` was refused later: do not charge its rate token. */
  refund(tenant: string): void {
    this.#buckets.get(tenant)?.refund();
  }

  acquire(tenant: string): void {
    this.#active.set(tenant, this.active(tenant) + 1);
  }

  release(tenant: string): void {
    const n = this.active(tenant) - 1;
    if (n <= 0) this.#active.delete(tenant);
    else this.#active.set(tenant, n);
  }
}
