/** Fleet: hosts, GPUs, pools with their replicas, and replica sets. */
import { useEffect } from 'preact/hooks';
import type { Api, NodeSummary, PoolHealth, ReplicaSet } from '../api.js';
import { Chart } from '../chart.js';
import { useFleet } from '../fleet-data.js';
import { usePoll } from '../hooks.js';
import { useMetrics } from '../metrics-history.js';
import { sum } from '../prom.js';
import { Badge, ErrorLine, Meter, Section, ago, bytes, ms, pct } from '../widgets.js';

type Device = NonNullable<NonNullable<PoolHealth['telemetry']>['devices']>[number];

/** GPU memory in use over the last minutes, per device, from the pools' health reads. */
const memHistory: { t: number; used: ReadonlyMap<string, number> }[] = [];
const HISTORY_S = 5 * 60;

function recordMemory(gpus: readonly { key: string; d: Device }[]): void {
  const t = Date.now() / 1000;
  memHistory.push({ t, used: new Map(gpus.map((g) => [g.key, g.d.memory_used_bytes / 2 ** 30])) });
  while (memHistory.length > 0 && memHistory[0]!.t < t - HISTORY_S) memHistory.shift();
}

export function Fleet({ api }: { api: Api }) {
  const { data, error } = useFleet(api);
  const nodes = usePoll(() => api.nodes(), 2_000);
  const metrics = useMetrics();
  useEffect(() => {
    if (data) recordMemory(gpusOf(data.pools));
  }, [data]);
  const latest = metrics.kind === 'ok' ? metrics.scrapes.at(-1)?.samples : undefined;
  if (!data) return error ? <ErrorLine error={error} /> : <p>Loading the fleet…</p>;
  const { sets, pools } = data;

  // Hosts: this orchestrator's own (its local pools), and every pool-managerd node it accepts.
  const hosts = hostsOf(sets, pools, nodes.data?.nodes ?? []);

  const gpus = gpusOf(pools);
  const memKeys = gpus.map((g) => g.key);

  return (
    <div class="view">
      <ErrorLine error={error} />
      <div class="cards" aria-label="Fleet summary">
        <Card label="Hosts" value={String(hosts.length)} />
        <Card label="GPUs" value={String(gpus.length)} />
        <Card label="Pools ready" value={`${pools.filter((p) => p.ready).length} / ${pools.length}`} />
        <Card
          label="Replicas ready"
          value={`${sets.reduce((n, s) => n + s.replicas_ready, 0)} / ${sets.reduce((n, s) => n + s.replicas_total, 0)}`}
        />
        <Card label="Queued" value={String(pools.reduce((n, p) => n + (p.metrics.queue_depth ?? 0), 0))} />
      </div>

      <Section title="Hosts">
        <ErrorLine error={nodes.error} />
        <table>
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">Kind</th>
              <th scope="col">State</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">Pools</th>
              <th scope="col">Replicas ready</th>
              <th scope="col">GPUs</th>
            </tr>
          </thead>
          <tbody>
            {hosts.map((h) => (
              <tr key={h.id} data-host={h.id}>
                <th scope="row">{h.id}</th>
                <td>{h.node ? 'pool-managerd node' : 'orchestrator host'}</td>
                <td>
                  {h.node ? (
                    <Badge
                      value={h.node.state}
                      tone={h.node.state === 'up' ? 'ok' : h.node.state === 'lost' ? 'bad' : 'muted'}
                    />
                  ) : (
                    <Badge value="up" tone="ok" />
                  )}
                </td>
                <td>{h.node?.last_seen_ms === undefined ? '—' : ago(h.node.last_seen_ms)}</td>
                <td>{h.pools.length === 0 ? <span class="muted">none</span> : h.pools.join(', ')}</td>
                <td>
                  {h.ready} / {h.total}
                </td>
                <td>
                  {h.node === undefined ? (
                    '—'
                  ) : (
                    <>
                      {h.node.gpus}
                      {h.node.gpu_stale ? (
                        <>
                          {' '}
                          <Badge value="stale" tone="bad" />
                          {h.node.gpu_error ? <div class="small">{h.node.gpu_error}</div> : null}
                        </>
                      ) : null}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>

      {gpus.length === 0 ? null : (
        <div class="charts">
          <Chart
            title="GPU memory in use"
            unit="GiB"
            times={memHistory.map((h) => h.t)}
            series={memKeys.map((k) => ({ label: k, values: memHistory.map((h) => h.used.get(k) ?? null) }))}
          />
        </div>
      )}
      <Section title="GPUs">
        {gpus.length === 0 ? (
          <p class="muted">No GPU telemetry: the pools run on CPU or simulated engines.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">GPU</th>
                <th scope="col">Host</th>
                <th scope="col">Utilization</th>
                <th scope="col">VRAM</th>
                <th scope="col">Temp.</th>
                <th scope="col">ECC (uncorr.)</th>
                <th scope="col">Reading</th>
              </tr>
            </thead>
            <tbody>
              {gpus.map(({ d, stale, lastGood, pool }) => (
                <tr key={`${d.host ?? ''}${d.index}`}>
                  <th scope="row">
                    #{d.index} {d.name ?? ''}
                    <div class="muted small">{pool}</div>
                  </th>
                  <td>{d.host ?? 'local'}</td>
                  <td>
                    {d.utilization === undefined ? (
                      '—'
                    ) : (
                      <Meter value={d.utilization} label={`GPU ${d.index} utilization`} />
                    )}{' '}
                    {pct(d.utilization)}
                  </td>
                  <td>
                    <Meter
                      value={d.memory_used_bytes / Math.max(1, d.memory_total_bytes)}
                      label={`GPU ${d.index} memory`}
                    />{' '}
                    {bytes(d.memory_used_bytes)} / {bytes(d.memory_total_bytes)}
                  </td>
                  <td>{d.temperature_c === undefined ? '—' : `${d.temperature_c} °C`}</td>
                  <td>
                    {d.ecc_uncorrected === undefined ? (
                      '—'
                    ) : d.ecc_uncorrected === 0 ? (
                      '0'
                    ) : (
                      <Badge value={String(d.ecc_uncorrected)} tone="bad" />
                    )}
                  </td>
                  <td>
                    {stale ? (
                      <Badge value={`stale since ${ago(lastGood)}`} tone="bad" />
                    ) : (
                      <Badge value="current" tone="ok" />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>

      <Section title="Pools and replicas">
        <table>
          <thead>
            <tr>
              <th scope="col">Pool</th>
              <th scope="col">State</th>
              <th scope="col">Queue</th>
              <th scope="col">Slots free</th>
              <th scope="col">Replicas</th>
              <th scope="col">Restarts</th>
              <th scope="col">SLO breaker</th>
              <th scope="col">Last failure</th>
            </tr>
          </thead>
          <tbody>
            {pools.map((p) => (
              <tr key={p.pool_id} data-pool={p.pool_id}>
                <th scope="row">
                  {p.pool_id}
                  <div class="muted small">
                    {p.engine_version ?? ''}
                    {p.simulated ? ' · simulated' : ''}
                  </div>
                </th>
                <td>
                  <PoolState p={p} />
                </td>
                <td>{p.metrics.queue_depth ?? 0}</td>
                <td>
                  {p.metrics.slots_free ?? 0} / {p.metrics.slots_total ?? 0}
                </td>
                <td>
                  <ul class="plain">
                    {(p.replicas ?? []).map((r) => (
                      <li key={r.replica_id}>
                        {r.replica_id} <Badge value={r.state} />
                        {r.cause === undefined ? null : <span class="small"> {r.cause}</span>}
                      </li>
                    ))}
                  </ul>
                </td>
                <td>{latest ? sum(latest, 'pool_restarts_total', { pool_id: p.pool_id }) : '—'}</td>
                <td>
                  {p.slo_breaker?.enabled === false ? (
                    <span class="muted">off</span>
                  ) : (
                    <>
                      <Badge value={p.slo_breaker?.state ?? 'closed'} />
                      {p.slo_breaker?.cause ? <div class="small">{p.slo_breaker.cause}</div> : null}
                    </>
                  )}
                </td>
                <td class="small">{p.last_error ?? <span class="muted">none</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>

      <Section title="Replica sets">
        <table>
          <thead>
            <tr>
              <th scope="col">Replica set</th>
              <th scope="col">Model</th>
              <th scope="col">Pools</th>
              <th scope="col">Replicas ready</th>
              <th scope="col">Slots free</th>
              <th scope="col">Load</th>
              <th scope="col">SLO attainment</th>
            </tr>
          </thead>
          <tbody>
            {sets.map((s) => (
              <tr key={s.id}>
                <th scope="row">
                  {s.id}
                  <div class="muted small">{s.engine}</div>
                </th>
                <td>{s.model_id}</td>
                <td>{s.pools.join(', ')}</td>
                <td>
                  {s.replicas_ready} / {s.replicas_total}
                </td>
                <td>
                  {s.slots_free} / {s.slots_total}
                </td>
                <td>
                  <Meter value={s.load} label={`${s.id} load`} /> {pct(s.load)}
                </td>
                <td>
                  <ul class="plain">
                    {Object.entries(s.slo ?? {}).map(([prio, v]) => (
                      <li key={prio}>
                        {prio}:{' '}
                        <Badge
                          value={v.samples === 0 ? 'no samples' : v.met ? 'met' : 'missed'}
                          tone={v.samples === 0 ? 'muted' : v.met ? 'ok' : 'bad'}
                        />{' '}
                        <span class="small">
                          p95 TTFT {ms(v.ttft_p95_ms)}, errors {pct(v.error_rate)} ({v.samples} tasks)
                        </span>
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}

interface Host {
  readonly id: string;
  /** Absent for this orchestrator's own host. */
  readonly node: NodeSummary | undefined;
  readonly pools: string[];
  ready: number;
  total: number;
}

/** The local host (when a pool runs there) and every node, with their pools' replicas. */
function hostsOf(
  sets: readonly ReplicaSet[],
  pools: readonly PoolHealth[],
  nodes: readonly NodeSummary[],
): Host[] {
  const out = new Map<string, Host>();
  const host = (id: string): Host => {
    const h = out.get(id) ?? { id, node: nodes.find((n) => n.node_id === id), pools: [], ready: 0, total: 0 };
    out.set(id, h);
    return h;
  };
  for (const n of nodes) host(n.node_id);
  for (const s of sets)
    for (const m of s.members ?? []) {
      const names = m.hosts !== undefined && m.hosts.length > 0 ? m.hosts : ['local'];
      for (const h of names) if (!host(h).pools.includes(m.pool_id)) host(h).pools.push(m.pool_id);
    }
  for (const p of pools)
    for (const r of p.replicas ?? []) {
      const h = host(r.host ?? 'local');
      h.total++;
      if (r.state === 'ready') h.ready++;
    }
  // The orchestrator's own host first, then the nodes by id.
  return [...out.values()].sort((a, b) =>
    a.id === 'local' ? -1 : b.id === 'local' ? 1 : a.id.localeCompare(b.id),
  );
}

interface Gpu {
  /** `host #index`, unique over the fleet. */
  readonly key: string;
  readonly pool: string;
  readonly stale: boolean;
  readonly lastGood: number | undefined;
  readonly d: Device;
}

/** Each GPU once (pools may share one), by host and index. */
function gpusOf(pools: readonly PoolHealth[]): Gpu[] {
  const out = new Map<string, Gpu>();
  for (const p of pools)
    for (const d of p.telemetry?.devices ?? []) {
      const key = `${d.host ?? 'local'} #${d.index}`;
      if (!out.has(key))
        out.set(key, {
          key,
          pool: p.pool_id,
          stale: p.telemetry?.stale === true,
          lastGood: p.telemetry?.last_good_ms,
          d,
        });
    }
  return [...out.values()].sort(
    (a, b) => (a.d.host ?? '').localeCompare(b.d.host ?? '') || a.d.index - b.d.index,
  );
}

export function PoolState({ p }: { p: PoolHealth }) {
  if (p.reloading) return <Badge value="reloading" />;
  if (p.draining) return <Badge value={p.ready ? 'draining' : 'drained'} tone="warn" />;
  return p.ready ? <Badge value="ready" /> : <Badge value="unready" />;
}

function Card({ label, value }: { label: string; value: string }) {
  return (
    <div class="card">
      <div class="card-value">{value}</div>
      <div class="card-label">{label}</div>
    </div>
  );
}
