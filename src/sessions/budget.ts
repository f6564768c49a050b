/**
 * Session budgets (SPEC §3.6): tokens, wall time and cost (tokens × the pool's prices). Pure
 * arithmetic; the orchestrator charges usage and enforces the results at admission and during
 * decode.
 */
export interface SessionUsage {
  tokens: number;
  wallMs: number;
  cost: number;
}

export interface BudgetLimits {
  readonly sessionTokens: number | undefined;
  readonly sessionWallMs: number | undefined;
  readonly sessionCost: number | undefined;
}

export interface Prices {
  readonly inputPer1kTokens: number;
  readonly outputPer1kTokens: number;
}

export interface BudgetRemaining {
  readonly tokens?: number;
  readonly wallMs?: number;
  readonly cost?: number;
}

export type BudgetKind = 'tokens' | 'wall_ms' | 'cost';

export const emptyUsage = (): SessionUsage => ({ tokens: 0, wallMs: 0, cost: 0 });

/** True when any session budget is set (only then is usage kept in the durable ledger). */
export const hasSessionBudget = (l: BudgetLimits): boolean =>
  l.sessionTokens !== undefined || l.sessionWallMs !== undefined || l.sessionCost !== undefined;

export function costOf(prices: Prices, tokensIn: number, tokensOut: number): number {
  return (tokensIn * prices.inputPer1kTokens + tokensOut * prices.outputPer1kTokens) / 1000;
}

/** What is left of each configured budget (absent: unlimited). */
export function remaining(usage: SessionUsage, limits: BudgetLimits): BudgetRemaining {
  const r: { tokens?: number; wallMs?: number; cost?: number } = {};
  if (limits.sessionTokens !== undefined) r.tokens = Math.max(0, limits.sessionTokens - usage.tokens);
  if (limits.sessionWallMs !== undefined) r.wallMs = Math.max(0, limits.sessionWallMs - usage.wallMs);
  if (limits.sessionCost !== undefined) r.cost = Math.max(0, limits.sessionCost - usage.cost);
  return r;
}

/** At admission: the budget that cannot cover a task of `promptTokens` + `maxTokens`, if any. */
export function admissionShortfall(
  usage: SessionUsage,
  limits: BudgetLimits,
  prices: Prices,
  promptTokens: number,
  maxTokens: number,
): { kind: BudgetKind; need: number; left: number } | undefined {
  const left = remaining(usage, limits);
  if (left.tokens !== undefined && promptTokens + maxTokens > left.tokens)
    return { kind: 'tokens', need: promptTokens + maxTokens, left: left.tokens };
  const cost = costOf(prices, promptTokens, maxTokens);
  if (left.cost !== undefined && cost > left.cost) return { kind: 'cost', need: cost, left: left.cost };
  if (left.wallMs !== undefined && left.wallMs <= 0) return { kind: 'wall_ms', need: 1, left: 0 };
  return undefined;
}

/** During decode: the first budget that `usage` (committed + this task so far) exhausts. */
export function exhausted(usage: SessionUsage, limits: BudgetLimits): BudgetKind | undefined {
  if (limits.sessionTokens !== undefined && usage.tokens >= limits.sessionTokens) return 'tokens';
  if (limits.sessionCost !== undefined && usage.cost >= limits.sessionCost) return 'cost';
  if (limits.sessionWallMs !== undefined && usage.wallMs >= limits.sessionWallMs) return 'wall_ms';
  return undefined;
}
