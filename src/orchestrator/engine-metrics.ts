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
import { engineBusyOf } from '../scheduler/engine-busy.js';

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
        // Placement weighs load and KV pressure by what the engine itself reports.
        const busy = text === undefined ? undefined : engineBusyOf(pool.config.engine, text);
        pool.observeEngine(r.id, {
          ...(kv === undefined ? {} : { kvUsage: kv }),
          ...(busy === undefined ? {} : { busy }),
        });
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

/** Which replicas a scrape covers: a scrape made before a replica became Ready is out of date. */
export function readyTopology(pools: readonly PoolRuntime[]): string {
  return pools.flatMap((p) => p.readyReplicas().map((r) => `${p.id}/${r.id}`)).join(',');
}

/**
 * Engine metrics served from a cache (SPEC §17 §11): refreshed every `intervalMs` in the
 * background from the first read on, and at once when the set of Ready replicas changed, one
 * refresh at a time. A scrape
 * of `/metrics` reads the cache; it never fans out to the engines itself, so however often
 * `/metrics` is scraped, each engine sees at most one scrape in flight from llama-orch.
 */
export class EngineMetricsCache {
  readonly #refresh: () => Promise<string>;
  readonly #topology: () => string;
  readonly #intervalMs: number;
  #text: string | undefined;
  #coveredTopology: string | undefined;
  #inFlight: { readonly topology: string; readonly done: Promise<string> } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #refreshes = 0;

  /**
   * @param refresh one scrape of every Ready replica (`scrapeEngineMetrics`)
   * @param topology the current Ready replicas (`readyTopology`)
   */
  constructor(refresh: () => Promise<string>, topology: () => string, intervalMs: number) {
    this.#refresh = refresh;
    this.#topology = topology;
    this.#intervalMs = intervalMs;
  }

  /**
   * Starts the periodic refresh (the timer never keeps the process alive). The first read starts
   * it too: engines of an orchestrator nobody scrapes are not scraped either.
   */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#start().catch(() => undefined), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** How many refreshes have started (each is one scrape of every Ready replica). */
  get refreshes(): number {
    return this.#refreshes;
  }

  /**
   * The latest engine metrics. Waits only when the cache does not cover the Ready replicas of
   * now (first scrape, a replica became Ready or left): then for the one refresh that does.
   */
  async current(): Promise<string> {
    this.start();
    const topology = this.#topology();
    if (this.#text !== undefined && this.#coveredTopology === topology) return this.#text;
    const pending = this.#inFlight;
    if (pending !== undefined && pending.topology === topology) return pending.done;
    if (pending !== undefined) await pending.done.catch(() => undefined);
    // Another waiter may have started the refresh this one needs while it waited.
    const again = this.#inFlight;
    if (again !== undefined) return again.done;
    if (this.#text !== undefined && this.#coveredTopology === this.#topology()) return this.#text;
    return this.#start();
  }

  #start(): Promise<string> {
    if (this.#inFlight !== undefined) return this.#inFlight.done;
    const topology = this.#topology();
    this.#refreshes++;
    const done = this.#refresh().then(
      (text) => {
        this.#text = text;
        this.#coveredTopology = topology;
        return text;
      },
      // A failed refresh keeps the previous scrape; the next tick tries again.
      () => this.#text ?? '',
    );
    const flight = { topology, done };
    this.#inFlight = flight;
    void done.finally(() => {
      if (this.#inFlight === flight) this.#inFlight = undefined;
    });
    return done;
  }
}
