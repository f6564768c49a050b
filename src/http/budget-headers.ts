import type { Accepted } from '../domain/submit.js';

/** `X-Budget-*-Remaining` of an acceptance: only the budgets the session has (ORCH-3099). */
export function budgetHeaders(b: Accepted['budget']): Record<string, string> {
  const h: Record<string, string> = {};
  if (b.tokens !== undefined) h['X-Budget-Tokens-Remaining'] = String(b.tokens);
  if (b.wallMs !== undefined) h['X-Budget-Time-Remaining-Ms'] = String(Math.floor(b.wallMs));
  if (b.cost !== undefined) h['X-Budget-Cost-Remaining'] = String(b.cost);
  return h;
}
