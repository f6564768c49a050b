/** Queues: depth per pool and priority over time, the queued tasks, admissions and refusals. */
import type { Api, TaskSummary } from '../api.js';
import { Chart } from '../chart.js';
import { usePoll } from '../hooks.js';
import { scrapeBefore, useMetrics } from '../metrics-history.js';
import { byLabel, sum, type Sample } from '../prom.js';
import { ErrorLine, Section, ms } from '../widgets.js';

/** The window of the admissions table. */
const WINDOW_S = 5 * 60;
/** Queued tasks listed (the rest are counted). */
const SHOWN = 40;

export function Queues({ api }: { api: Api }) {
  const { data, error } = usePoll(() => api.listTasks({ state: 'queued', limit: 500 }), 2_000);
  const running = usePoll(() => api.listTasks({ state: 'running', limit: 1000 }), 2_000);
  const m = useMetrics();
  const queued = [...(data?.tasks ?? [])].sort(
    (a, b) => a.pool_id.localeCompare(b.pool_id) || (a.queue_position ?? 0) - (b.queue_position ?? 0),
  );
  const now = Date.now();

  let depth = null;
  let admissions = null;
  if (m.kind === 'ok' && m.scrapes.length > 0) {
    const keys = new Set<string>();
    for (const s of m.scrapes)
      for (const x of s.samples)
        if (x.name === 'queue_depth') keys.add(`${x.labels['pool_id'] ?? ''}|${x.labels['priority'] ?? ''}`);
    const all = [...keys].sort().map((k) => {
      const [pool = '', priority = ''] = k.split('|');
      return {
        label: `${pool} ${priority}`,
        values: m.scrapes.map((s) => sum(s.samples, 'queue_depth', { pool_id: pool, priority })),
      };
    });
    // Queues that stayed empty are left out of the legend: a glance finds the ones that fill up.
    const busy = all.filter((s) => s.values.some((v) => v > 0));
    const series =
      busy.length > 0
        ? busy
        : [{ label: 'all pools', values: m.scrapes.map((s) => sum(s.samples, 'queue_depth')) }];
    depth = (
      <Chart
        title="Queue depth per pool and priority"
        unit="tasks"
        times={m.scrapes.map((s) => s.t)}
        series={series}
      />
    );
    const last = m.scrapes.at(-1)!;
    const first = scrapeBefore(m.scrapes, WINDOW_S)!;
    const span = Math.round(last.t - first.t);
    const delta = (name: string, label: string): [string, number][] => {
      const a = byLabel(first.samples, name, label);
      return [...byLabel(last.samples, name, label)]
        .map(([k, v]): [string, number] => [k, Math.max(0, v - (a.get(k) ?? 0))])
        .filter(([, v]) => v > 0);
    };
    const accepted = total(first.samples, last.samples, 'tasks_enqueued_total');
    const refused = delta('tasks_rejected_total', 'reason');
    admissions = (
      <Section title={`Admissions over the last ${ms(span * 1000)}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Decision</th>
              <th scope="col">Reason</th>
              <th scope="col">Tasks</th>
            </tr>
          </thead>
          <tbody>
            <tr>
              <th scope="row">accepted</th>
              <td>—</td>
              <td>{accepted}</td>
            </tr>
            {refused.map(([reason, n]) => (
              <tr key={reason}>
                <th scope="row">refused</th>
                <td>{reason}</td>
                <td>{n}</td>
              </tr>
            ))}
            {refused.length === 0 ? (
              <tr>
                <th scope="row">refused</th>
                <td class="muted">none</td>
                <td>0</td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </Section>
    );
  }

  return (
    <div class="view">
      {m.kind === 'forbidden' ? <p class="muted small">{m.message}</p> : <div class="charts">{depth}</div>}
      {admissions}
      <Tenants
        queued={data?.tasks ?? []}
        running={running.data?.tasks ?? []}
        shares={m.kind === 'ok' ? (m.scrapes.at(-1)?.samples ?? []) : []}
      />
      <Section title="Queued tasks">
        <ErrorLine error={error} />
        {queued.length === 0 ? (
          <p class="muted">Nothing is queued.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Pool</th>
                <th scope="col">Position</th>
                <th scope="col">Task</th>
                <th scope="col">Tenant</th>
                <th scope="col">Priority</th>
                <th scope="col">Predicted start</th>
                <th scope="col">Deadline left</th>
              </tr>
            </thead>
            <tbody>
              {queued.slice(0, SHOWN).map((t) => (
                <tr key={t.task_id}>
                  <td>{t.pool_id}</td>
                  <td>{t.queue_position ?? '—'}</td>
                  <th scope="row" class="mono">
                    {t.task_id.slice(0, 8)}
                  </th>
                  <td>{t.tenant}</td>
                  <td>{t.priority}</td>
                  <td>
                    {t.predicted_start_ms === undefined ? 'no ready slot' : `in ${ms(t.predicted_start_ms)}`}
                  </td>
                  <td>{ms(t.accepted_at_ms + t.deadline_ms - now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {queued.length > SHOWN ? (
          <p class="muted small">
            The first {SHOWN} of {queued.length} queued tasks, by pool and position.
          </p>
        ) : null}
      </Section>
    </div>
  );
}

function total(a: readonly Sample[], b: readonly Sample[], name: string): number {
  return Math.max(0, sum(b, name) - sum(a, name));
}

/** Who is using the fleet: each tenant's running and queued tasks, and its admission share. */
function Tenants(props: {
  queued: readonly TaskSummary[];
  running: readonly TaskSummary[];
  shares: readonly Sample[];
}) {
  const rows = new Map<string, { running: number; queued: number }>();
  const row = (t: string) => rows.get(t) ?? rows.set(t, { running: 0, queued: 0 }).get(t)!;
  for (const t of props.running) row(t.tenant).running++;
  for (const t of props.queued) row(t.tenant).queued++;
  for (const s of props.shares)
    if (s.name === 'admission_share' && s.labels['tenant']) row(s.labels['tenant']);
  const share = (tenant: string, priority: string): string => {
    const s = props.shares.find(
      (x) =>
        x.name === 'admission_share' && x.labels['tenant'] === tenant && x.labels['priority'] === priority,
    );
    return s === undefined ? '—' : `${Math.round(s.value * 100)}%`;
  };
  if (rows.size === 0) return null;
  return (
    <Section title="Tenants">
      <table>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Running</th>
            <th scope="col">Queued</th>
            <th scope="col">Admission share (interactive)</th>
            <th scope="col">Admission share (batch)</th>
          </tr>
        </thead>
        <tbody>
          {[...rows]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([tenant, r]) => (
              <tr key={tenant}>
                <th scope="row">{tenant}</th>
                <td>{r.running}</td>
                <td>{r.queued}</td>
                <td>{share(tenant, 'interactive')}</td>
                <td>{share(tenant, 'batch')}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </Section>
  );
}
