/**
 * Engine metrics re-exported on llama-orch's `/metrics` (SPEC §7): every Ready replica's native
 * scrape, re-labelled with `engine, engine_version, pool_id, replica_id, model_id` (and
 * `trtllm_version` for Triton), merged into one exposition. `engine_replica_info` says which
 * replicas are simulated, so dashboards never mistake a rehearsal for production.
 */
import type { Engine } from '../domain/types.js';
import { ENGINE_DRIVERS } from '../engines/registry.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { relabelInto, renderFamilies, type Family } from '../util/prom-text.js';
import type { PoolRuntime } from './pool-runtime.js';

/** The engine's KV usage (0..1) in a scrape, from its own gauge (its driver's mapping), when it reports one. */
export function kvUsageOf(engine: Engine, text: string): number | undefined {
  return ENGINE_DRIVERS[engine].metrics.kvUsage(text);
}

/**
 * The lines of a scrape in the engine's own metric families: the contract re-exports those
 * only (`engine_passthrough.families`), not whatever else the engine's exporter adds (a Python
 * engine's `process_*` and `python_gc_*`), which would collide across engines and with ours.
 */
export function ownFamilies(engine: Engine, text: string): string {
  const family = ENGINE_DRIVERS[engine].metrics.family;
  return text
    .split('\n')
    .filter((line) => {
      const name = /^(?:# (?:HELP|TYPE) )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line.trim())?.[1];
      return name !== undefined && family.test(name);
    })
    .join('\n');
}

/**
 * Scrapes every Ready replica; with `metrics`, also sets `kv_cache_usage_ratio` from each
 * engine's own KV state (`EngineAdapter.kvUsage`) or KV gauge, so the contract metric is
 * engine-independent; an engine that reports neither leaves it unset, never guessed.
 */
export async function scrapeEngineMetrics(
  pools: readonly PoolRuntime[],
  timeoutMs = 2_000,
  metrics?: OrchMetrics,
): Promise<string> {
  const families = new Map<string, Family>();
  const info: Family = {
    help: 'Engine replicas behind llama-orch (1 per replica); simulated="true" for engine simulators.',
    type: 'gauge',
    samples: [],
  };
  const jobs = pools.flatMap((pool) =>
    pool.readyReplicas().map(async (r) => {
      const labels: Record<string, string> = {
        engine: pool.config.engine,
        engine_version: r.props?.engineVersion ?? pool.engineVersion(),
        pool_id: pool.id,
        replica_id: r.id,
        model_id: pool.config.model.id,
      };
      if (r.props?.trtllmVersion !== undefined) labels['trtllm_version'] = r.props.trtllmVersion;
      const text = await r.adapter.scrapeMetrics(AbortSignal.timeout(timeoutMs)).catch(() => undefined);
      if (metrics) {
        // The engine's own state where its metrics carry no KV gauge (llama.cpp's slots), else the gauge.
        const own = await r.adapter.kvUsage?.(AbortSignal.timeout(timeoutMs)).catch(() => undefined);
        const kv = own ?? (text === undefined ? undefined : kvUsageOf(pool.config.engine, text));
        if (kv !== undefined)
          metrics.set(
            'kv_cache_usage_ratio',
            {
              engine: pool.config.engine,
              engine_version: r.props?.engineVersion ?? pool.engineVersion(),
              pool_id: pool.id,
              replica_id: r.id,
            },
            kv,
          );
      }
      return {
        labels,
        text: text === undefined ? undefined : ownFamilies(pool.config.engine, text),
        simulated: pool.simulated,
      };
    }),
  );
  for (const { labels, text, simulated } of await Promise.all(jobs)) {
    if (text !== undefined) relabelInto(families, text, labels);
    const all = { ...labels, simulated: String(simulated) };
    info.samples.push(
      `engine_replica_info{${Object.entries(all)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
        .join(',')}} 1`,
    );
  }
  if (info.samples.length > 0) families.set('engine_replica_info', info);
  return renderFamilies(families);
}
