/**
 * Engine metrics re-exported on llama-orch's `/metrics` (SPEC §7): every Ready replica's native
 * scrape, re-labelled with `engine, engine_version, pool_id, replica_id, model_id` (and
 * `trtllm_version` for Triton), merged into one exposition. `engine_replica_info` says which
 * replicas are simulated, so dashboards never mistake a rehearsal for production.
 */
import type { Engine } from '../domain/types.js';
import type { OrchMetrics } from '../metrics/metrics.js';
import { relabelInto, renderFamilies, type Family } from '../util/prom-text.js';
import type { PoolRuntime } from './pool-runtime.js';

/** Each engine's own KV-cache usage gauge (0..1); TGI exposes none. */
const KV_USAGE: Readonly<Record<Engine, RegExp | undefined>> = {
  llamacpp: /^llamacpp:kv_cache_usage_ratio(?:\{[^}]*\})?\s+(\S+)/m,
  vllm: /^vllm:(?:gpu_cache_usage_perc|kv_cache_usage_perc)(?:\{[^}]*\})?\s+(\S+)/m,
  triton: /^nv_trt_llm_kv_cache_block_metrics\{[^}]*kv_cache_block_type="fraction"[^}]*\}\s+(\S+)/m,
  tgi: undefined,
};

/** The engine's KV usage in a scrape, when it reports one. */
export function kvUsageOf(engine: Engine, text: string): number | undefined {
  const v = Number(KV_USAGE[engine]?.exec(text)?.[1]);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * Scrapes every Ready replica; with `metrics`, also sets `kv_cache_usage_ratio` from each
 * engine's own KV gauge so the contract metric is engine-independent.
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
      if (text !== undefined && metrics) {
        const kv = kvUsageOf(pool.config.engine, text);
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
      return { labels, text, simulated: pool.simulated };
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
