/**
 * Requests an engine itself reports as running plus waiting, from its Prometheus metrics: the
 * engine's own slot and queue state, which placement weighs next to the orchestrator's in-flight
 * count (requests it does not count, such as aborted ones still decoding, show up here).
 */
import type { Engine } from '../domain/types.js';

const GAUGES: Readonly<Record<Engine, readonly string[]>> = {
  vllm: ['vllm:num_requests_running', 'vllm:num_requests_waiting'],
  llamacpp: ['llamacpp:requests_processing', 'llamacpp:requests_deferred'],
  tgi: ['tgi_batch_current_size', 'tgi_queue_size'],
  // Triton's inference counters are cumulative: no gauge of requests in flight.
  triton: [],
};

/** Running plus waiting requests; undefined when the scrape carries none of the engine's gauges. */
export function engineBusyOf(engine: Engine, scrape: string): number | undefined {
  let sum: number | undefined;
  for (const name of GAUGES[engine]) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp(`^${escaped}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
    for (const m of scrape.matchAll(re)) {
      const v = Number(m[1]);
      if (Number.isFinite(v)) sum = (sum ?? 0) + v;
    }
  }
  return sum;
}
