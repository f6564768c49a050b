/**
 * The metrics contract of SPEC §12, generated from `contracts/metrics.json`: names, types, units,
 * label sets and cardinality budgets. Code registers metrics from this table only.
 */
import { METRICS } from './generated/contract.js';

export { LABEL_BUDGETS, METRICS, PROCESS_METRICS_PREFIX } from './generated/contract.js';

export type MetricName = keyof typeof METRICS;
export type LabelsOf<N extends MetricName> = (typeof METRICS)[N]['labels'][number];
