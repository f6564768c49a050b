/**
 * The admission-latency driver shared by the `journal` and `plugins` benches: client-side
 * `POST /v1/tasks` → 202 latency from a few closed-loop clients.
 */
import { request } from 'undici';
import { agent } from './stream-clients.js';

/** A POST and its client-side latency; a status ≥ 300 throws. */
export async function post(url: string, path: string, body?: string): Promise<{ ms: number; text: string }> {
  const t0 = performance.now();
  const res = await request(`${url}${path}`, {
    method: 'POST',
    dispatcher: agent,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body }),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return { ms: performance.now() - t0, text };
}

export interface AdmissionsOptions {
  readonly clients: number;
  readonly count: number;
  /** A fresh task body per submission. */
  readonly body: () => string;
  /** Cancel each task at once (a warm-up that leaves the queue as it was). */
  readonly cancel: boolean;
}

/** `count` admissions by `clients` clients; their latencies in ms. */
export async function admissions(url: string, o: AdmissionsOptions): Promise<number[]> {
  const lat: number[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (issued++ < o.count) {
        const r = await post(url, '/v1/tasks', o.body());
        lat.push(r.ms);
        if (o.cancel)
          await post(url, `/v1/tasks/${(JSON.parse(r.text) as { task_id: string }).task_id}/cancel`);
      }
    }),
  );
  return lat;
}
