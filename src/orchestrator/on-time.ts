/**
 * Probability that a task finishes before its deadline, from the predicted time to finish and the
 * time left. A logistic curve over the relative slack: 0.5 when the prediction lands exactly on
 * the deadline, near 1 with ample slack, near 0 when already late.
 */
export function onTimeProbability(predictedFinishMs: number, remainingMs: number): number {
  if (remainingMs <= 0) return 0;
  if (!Number.isFinite(predictedFinishMs)) return 0;
  const slack = (remainingMs - predictedFinishMs) / remainingMs;
  const p = 1 / (1 + Math.exp(-8 * slack));
  return Math.round(p * 1000) / 1000;
}
