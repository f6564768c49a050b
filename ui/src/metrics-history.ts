/**
 * The last minutes of `/metrics`, scraped every few seconds while the console is open: charts
 * and "over the last minutes" tables are differences between these scrapes. Kept outside the
 * views, so switching views keeps the history.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Api } from './api.js';
import { ApiError } from './api.js';
import { parseProm, type Sample } from './prom.js';

export interface Scrape {
  /** Seconds since the epoch (uPlot's time axis). */
  readonly t: number;
  readonly samples: readonly Sample[];
}

export const SCRAPE_EVERY_MS = 2_000;
const KEEP_S = 5 * 60;

export type MetricsState =
  | { readonly kind: 'loading' }
  | { readonly kind: 'forbidden'; readonly message: string }
  | { readonly kind: 'ok'; readonly scrapes: readonly Scrape[] };

let scrapes: Scrape[] = [];
let state: MetricsState = { kind: 'loading' };
const listeners = new Set<(s: MetricsState) => void>();
let timer: ReturnType<typeof setTimeout> | undefined;
let running: Api | undefined;

async function scrape(api: Api): Promise<void> {
  try {
    const samples = parseProm(await api.metrics());
    const t = Date.now() / 1000;
    scrapes = [...scrapes.filter((s) => s.t > t - KEEP_S), { t, samples }];
    state = { kind: 'ok', scrapes };
  } catch (err) {
    state =
      err instanceof ApiError && (err.status === 401 || err.status === 403)
        ? { kind: 'forbidden', message: 'This key may not read /metrics (it needs the metrics scope).' }
        : { kind: 'forbidden', message: `Metrics unavailable: ${String(err)}` };
  }
  for (const l of listeners) l(state);
  if (running === api) timer = setTimeout(() => void scrape(api), SCRAPE_EVERY_MS);
}

/** Starts scraping with `api` (once per sign-in); `undefined` stops and forgets the history. */
export function scrapeWith(api: Api | undefined): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  running = api;
  scrapes = [];
  state = { kind: 'loading' };
  if (api) void scrape(api);
}

export function useMetrics(): MetricsState {
  const [s, set] = useState<MetricsState>(state);
  useEffect(() => {
    listeners.add(set);
    set(state);
    return () => void listeners.delete(set);
  }, []);
  return s;
}

/** The scrape closest to `seconds` before the latest one (the oldest when history is shorter). */
export function scrapeBefore(all: readonly Scrape[], seconds: number): Scrape | undefined {
  const last = all.at(-1);
  if (!last) return undefined;
  let best = all[0];
  for (const s of all) if (s.t <= last.t - seconds) best = s;
  return best;
}
