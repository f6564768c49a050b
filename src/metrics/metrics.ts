import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  LABEL_BUDGETS,
  METRICS,
  PROCESS_METRICS_PREFIX,
  type LabelsOf,
  type MetricName,
} from './contract.js';

type Labels<N extends MetricName> = Partial<Record<LabelsOf<N>, string>>;
type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** Value used when a label would exceed its cardinality budget. */
export const OVERFLOW_LABEL = '__overflow__';

/**
 * The one place metrics are declared (from the contract table). Other modules call the typed
 * helpers; once a metric has seen a label's budget of distinct values, further values of that
 * label on that metric collapse into `__overflow__`.
 */
export class OrchMetrics {
  readonly registry = new Registry();
  readonly #metrics = new Map<MetricName, AnyMetric>();
  /** Label values admitted so far, per metric and then per label: budgets hold per metric. */
  readonly #seen = new Map<MetricName, Map<string, Set<string>>>();

  constructor(opts: { processMetrics: boolean } = { processMetrics: true }) {
    for (const [name, def] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
      const base = { name, help: def.help, labelNames: [...def.labels], registers: [this.registry] };
      switch (def.type) {
        case 'counter':
          this.#metrics.set(name, new Counter(base));
          break;
        case 'gauge':
          this.#metrics.set(name, new Gauge(base));
          break;
        case 'histogram':
          this.#metrics.set(name, new Histogram({ ...base, buckets: [...def.buckets] }));
          break;
      }
    }
    if (opts.processMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: PROCESS_METRICS_PREFIX });
  }

  inc<N extends MetricName>(name: N, labels: Labels<N>, value = 1): void {
    const m = this.#metrics.get(name);
    if (m instanceof Counter || m instanceof Gauge) m.inc(this.#bounded(name, labels), value);
  }

  dec<N extends MetricName>(name: N, labels: Labels<N>, value = 1): void {
    const m = this.#metrics.get(name);
    if (m instanceof Gauge) m.dec(this.#bounded(name, labels), value);
  }

  set<N extends MetricName>(name: N, labels: Labels<N>, value: number): void {
    const m = this.#metrics.get(name);
    if (m instanceof Gauge) m.set(this.#bounded(name, labels), value);
  }

  /** Drops every series of a gauge: values that are no longer known must not linger (stale GPU telemetry). */
  reset<N extends MetricName>(name: N): void {
    const m = this.#metrics.get(name);
    if (m instanceof Gauge) m.reset();
  }

  observe<N extends MetricName>(name: N, labels: Labels<N>, value: number): void {
    const m = this.#metrics.get(name);
    if (m instanceof Histogram) m.observe(this.#bounded(name, labels), value);
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #bounded(name: MetricName, labels: Record<string, string | undefined>): Record<string, string> {
    const out: Record<string, string> = {};
    let perLabel: Map<string, Set<string>> | undefined;
    for (const [k, v] of Object.entries(labels)) {
      if (v === undefined) continue;
      const budget = LABEL_BUDGETS[k];
      if (budget === undefined) {
        out[k] = v;
        continue;
      }
      if (!perLabel) {
        perLabel = this.#seen.get(name);
        if (!perLabel) this.#seen.set(name, (perLabel = new Map<string, Set<string>>()));
      }
      let seen = perLabel.get(k);
      if (!seen) perLabel.set(k, (seen = new Set<string>()));
      if (!seen.has(v) && seen.size >= budget) out[k] = OVERFLOW_LABEL;
      else {
        seen.add(v);
        out[k] = v;
      }
    }
    return out;
  }
}
