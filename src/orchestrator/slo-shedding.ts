/**
 * The SLO breaker of each pool at work (ORCH-3040, `src/scheduler/slo-breaker.ts`): evaluated
 * from the pool's SLO window on every finished task and on the periodic sweep (so that an idle
 * pool's breaker can close), exported as `pool_slo_breaker_open`, logged on every change; and the
 * admission step that sheds a pool's batch work while its breaker is not closed.
 */
import type { Clock, Priority } from '../domain/types.js';
import { OrchError } from '../errors/orch-error.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { sloVerdict, type SloBreakerTransition } from '../scheduler/slo-breaker.js';
import type { Logger } from '../util/logger.js';
import type { PoolRuntime } from './pool-runtime.js';

export class SloBreakerWatch {
  readonly #metrics: OrchMetrics;
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(o: { readonly metrics: OrchMetrics; readonly logger: Logger; readonly clock: Clock }) {
    this.#metrics = o.metrics;
    this.#logger = o.logger;
    this.#clock = o.clock;
  }

  /** Feeds the pool's breaker the interactive verdict of its recent window, per the clock. */
  evaluate(pool: PoolRuntime): void {
    const breaker = pool.sloBreaker;
    const { enabled, windowMs, minSamples } = breaker.settings;
    if (enabled) {
      const now = this.#clock.now();
      const recent = pool.slo.snapshot({ sinceMs: now - windowMs }).interactive;
      const change = breaker.observe(now, sloVerdict(recent, minSamples));
      if (change) this.#log(pool, change);
    }
    this.#metrics.set(
      'pool_slo_breaker_open',
      { engine: pool.config.engine, pool_id: pool.id },
      breaker.state === 'closed' ? 0 : 1,
    );
  }

  #log(pool: PoolRuntime, t: SloBreakerTransition): void {
    const { closeAfterMs } = pool.sloBreaker.settings;
    const fields = {
      event: 'pool.slo_breaker',
      pool_id: pool.id,
      engine: pool.config.engine,
      state: t.to,
      previous_state: t.from,
      ...(t.cause === null ? {} : { cause: t.cause }),
    };
    const name = `SLO breaker of pool '${pool.id}'`;
    if (t.to === 'open' && t.from === 'closed')
      this.#logger.warn(fields, `${name} opened (${t.cause ?? ''}): shedding batch admissions`);
    else if (t.to === 'closed')
      this.#logger.info(
        fields,
        `${name} closed: interactive SLO met for ${closeAfterMs} ms; admitting batch again`,
      );
    else if (t.to === 'recovering')
      this.#logger.info(fields, `${name} recovering: interactive SLO met again; batch still shed`);
    else this.#logger.warn(fields, `${name} open again (${t.cause ?? ''}): batch still shed`);
  }
}

/**
 * Admission step (after the cheap local refusals, before anything is charged): a pool whose SLO
 * breaker is open or recovering refuses batch work with a retriable 429 whose backoff is the
 * earliest the breaker could close. Interactive work passes.
 */
export function checkSloBreaker(
  pool: PoolRuntime,
  priority: Priority,
  metrics: OrchMetrics,
  nowMs: number,
): void {
  const breaker = pool.sloBreaker;
  if (!breaker.sheds(priority)) return;
  const engine = pool.config.engine;
  const retryAfterMs = breaker.retryAfterMs(nowMs);
  const { state, cause } = breaker.view();
  metrics.inc('pool_slo_breaker_shed_total', { engine, pool_id: pool.id, priority });
  metrics.inc('admission_backpressure_events_total', { engine, policy: 'shed-low-priority' });
  throw new OrchError(
    'ADMISSION_REJECT',
    `the SLO breaker of pool '${pool.id}' is ${state}${cause === null ? '' : ` (${cause})`}: ` +
      `${priority} work is shed until the interactive SLO has been met for ` +
      `${breaker.settings.closeAfterMs} ms; retry after ${retryAfterMs} ms`,
    { engine, poolId: pool.id, policyLabel: 'shed-low-priority', retryAfterMs },
  );
}
