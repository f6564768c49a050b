/**
 * Engine metrics re-exported on llama-orch's `/metrics` (SPEC §7): every Ready replica's native
 * scrape, re-labelled with `engine, engine_version, pool_id, replica_id, model_id` (and
 * `trtllm_version` for Triton), merged into one exposition. `engine_replica_info` says which
 * replicas are simulated, so dashboards never mistake a rehearsal for production.
 */
import { relabelInto, renderFamilies, type Family } from '../util/prom-text.js';
import type { PoolRuntime } from './pool-runtime.js';

export async function scrapeEngineMetrics(pools: readonly PoolRuntime[], timeoutMs = 2_000): Promise<string> {
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
