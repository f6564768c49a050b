import type { EngineHealth } from './adapter.js';
import type { EngineHttp } from './engine-http.js';

/**
 * Reads an engine's health endpoint: 2xx is ready; `isLoading(status, body)` tells a model still
 * loading apart from other failures; no answer at all means the process is gone.
 */
export async function probeHealth(
  http: EngineHttp,
  path: string,
  signal: AbortSignal,
  isLoading: (status: number, body: string) => boolean,
): Promise<EngineHealth> {
  try {
    const r = await http.probe(path, signal);
    if (r.status >= 200 && r.status < 300) return { live: true, ready: true, loading: false };
    if (isLoading(r.status, r.text))
      return { live: true, ready: false, loading: true, detail: r.text.slice(0, 200) };
    return { live: true, ready: false, loading: false, detail: `${path} answered ${r.status}` };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    return { live: false, ready: false, loading: false, detail: (err as Error).message };
  }
}
