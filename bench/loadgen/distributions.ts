/**
 * Length distributions of a synthetic workload (prompt tokens, output tokens, turns, think time),
 * sampled from a seeded generator so a workload is the same on every run and platform.
 */
import { Type, type Static } from '@sinclair/typebox';

const Bound = (description: string) => Type.Optional(Type.Number({ minimum: 0, description }));

export const DistributionSchema = Type.Union([
  Type.Object(
    { kind: Type.Literal('fixed'), value: Type.Number({ minimum: 0 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('uniform'), min: Type.Number({ minimum: 0 }), max: Type.Number({ minimum: 0 }) },
    { additionalProperties: false, description: 'Integers min..max inclusive, equally likely.' },
  ),
  Type.Object(
    {
      kind: Type.Literal('normal'),
      mean: Type.Number(),
      sd: Type.Number({ minimum: 0 }),
      min: Bound('Clip below (default 0).'),
      max: Bound('Clip above (default none).'),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('lognormal'),
      median: Type.Number({ exclusiveMinimum: 0, description: 'exp(mu) of the underlying normal.' }),
      sigma: Type.Number({ minimum: 0, description: 'Standard deviation of the underlying normal.' }),
      min: Bound('Clip below (default 0).'),
      max: Bound('Clip above (default none).'),
    },
    { additionalProperties: false },
  ),
]);

/** A distribution of non-negative integers (lengths in tokens, counts, milliseconds). */
export type Distribution = Static<typeof DistributionSchema>;

/** A standard normal draw from two uniform ones (Box–Muller; one of the pair is dropped). */
function gaussian(rng: () => number): number {
  // 1 - u keeps the logarithm finite: mulberry32 can return 0, never 1.
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const clip = (x: number, min: number | undefined, max: number | undefined): number =>
  Math.min(max ?? Infinity, Math.max(min ?? 0, x));

/**
 * One draw of `d`, rounded to an integer and clipped to its bounds (never below 0). Every kind
 * consumes the same number of generator values on every call (fixed: none, uniform: one,
 * normal and lognormal: two), so changing one distribution's parameters never shifts the draws of
 * the others.
 */
export function sample(d: Distribution, rng: () => number): number {
  switch (d.kind) {
    case 'fixed':
      return Math.round(d.value);
    case 'uniform': {
      const lo = Math.ceil(Math.min(d.min, d.max));
      const hi = Math.floor(Math.max(d.min, d.max));
      return lo + Math.floor(rng() * (hi - lo + 1));
    }
    case 'normal':
      return Math.round(clip(d.mean + d.sd * gaussian(rng), d.min, d.max));
    case 'lognormal':
      return Math.round(clip(d.median * Math.exp(d.sigma * gaussian(rng)), d.min, d.max));
  }
}

/**
 * A Zipf-like choice of an index in 0..n-1: P(k) ∝ 1 / (k + 1)^s. s = 0 is uniform; s ≈ 1 is
 * the usual popularity skew (a few system prompts serve most sessions).
 */
export function zipfIndex(n: number, s: number, rng: () => number): number {
  let total = 0;
  for (let k = 1; k <= n; k++) total += 1 / k ** s;
  let u = rng() * total;
  for (let k = 1; k <= n; k++) {
    u -= 1 / k ** s;
    if (u < 0) return k - 1;
  }
  return n - 1;
}
