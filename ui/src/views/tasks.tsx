/** Tasks: recent and running tasks; open one to watch its stream live and cancel it. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Api, type TaskEvent, type TaskSummary } from '../api.js';
import { Chart } from '../chart.js';
import { usePoll } from '../hooks.js';
import { useMetrics, type Scrape } from '../metrics-history.js';
import { quantileBetween, sum } from '../prom.js';
import { Badge, ErrorLine, Section, ago, ms } from '../widgets.js';

type Filter = '' | 'queued' | 'running' | 'ended';

const ENDED = new Set(['completed', 'canceled', 'failed', 'evicted']);
/** TTFT is the interactive SLO (SPEC §15); batch waits in queue by design. */
const INTERACTIVE = { priority: 'interactive' };

export function Tasks({ api }: { api: Api }) {
  const [filter, setFilter] = useState<Filter>('');
  const [limit, setLimit] = useState(25);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const { data, error, refresh } = usePoll(
    () => api.listTasks({ limit, ...(filter === '' ? {} : { state: filter }) }),
    2_000,
    [filter, limit],
  );
  // Running first (what an operator watches), then queued, then ended (newest first, as listed).
  const rank = (t: TaskSummary): number => (t.state === 'queued' ? 1 : ENDED.has(t.state) ? 2 : 0);
  const tasks = [...(data?.tasks ?? [])].sort((a, b) => rank(a) - rank(b));
  const selected = tasks.find((t) => t.task_id === open);
  return (
    <div class="view">
      <TaskCharts />
      <div class="split">
        <Section title="Tasks">
          <div class="toolbar">
            <label>
              Show{' '}
              <select
                value={filter}
                onChange={(e) => setFilter((e.target as HTMLSelectElement).value as Filter)}
              >
                <option value="">all</option>
                <option value="queued">queued</option>
                <option value="running">running</option>
                <option value="ended">ended</option>
              </select>
            </label>
            <label>
              At most{' '}
              <select value={limit} onChange={(e) => setLimit(Number((e.target as HTMLSelectElement).value))}>
                {[25, 100, 500].map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
            <span class="muted small" aria-live="polite">
              {tasks.length} tasks
            </span>
          </div>
          <ErrorLine error={error} />
          <table class="tasks">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Tenant</th>
                <th scope="col">Pool</th>
                <th scope="col">Priority</th>
                <th scope="col">State</th>
                <th scope="col">Tokens</th>
                <th scope="col">Accepted</th>
              </tr>
            </thead>
            <tbody>
              {tasks.map((t) => (
                <tr key={t.task_id} class={t.task_id === open ? 'selected' : ''} data-task={t.task_id}>
                  <th scope="row">
                    <button
                      type="button"
                      class="link mono"
                      aria-pressed={t.task_id === open}
                      aria-label={`Watch task ${t.task_id}`}
                      onClick={() => setOpen(t.task_id)}
                    >
                      {t.task_id.slice(0, 8)}
                    </button>
                  </th>
                  <td>{t.tenant}</td>
                  <td>{t.pool_id}</td>
                  <td>{t.priority}</td>
                  <td>
                    <Badge value={t.state} />
                    {t.error_code ? <span class="small"> {t.error_code}</span> : null}
                  </td>
                  <td>{t.tokens_out}</td>
                  <td class="small">{ago(t.accepted_at_ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
        {open === undefined ? null : (
          <TaskStream
            key={open}
            api={api}
            id={open}
            summary={selected}
            onClose={() => setOpen(undefined)}
            onChange={refresh}
          />
        )}
      </div>
    </div>
  );
}

interface Watched {
  readonly text: string;
  readonly tokens: number;
  readonly started?: object;
  readonly metrics?: object;
  readonly terminal?: TaskEvent;
  readonly events: number;
}

function TaskStream(props: {
  api: Api;
  id: string;
  summary: TaskSummary | undefined;
  onClose: () => void;
  onChange: () => void;
}) {
  const { api, id, summary } = props;
  const [w, setW] = useState<Watched>({ text: '', tokens: 0, events: 0 });
  const [error, setError] = useState<Error | undefined>(undefined);
  const [canceling, setCanceling] = useState(false);
  useEffect(() => {
    const stop = new AbortController();
    api
      .stream(
        id,
        (e) =>
          setW((prev) => {
            const next = { ...prev, events: prev.events + 1 };
            switch (e.event) {
              case 'started':
                return { ...next, started: e.data };
              case 'token':
                return { ...next, text: prev.text + e.data.t, tokens: prev.tokens + 1 };
              case 'metrics':
                return { ...next, metrics: e.data };
              case 'end':
              case 'error':
                return { ...next, terminal: e };
            }
          }),
        stop.signal,
      )
      .catch((err: unknown) => {
        if (stop.signal.aborted) return;
        // Streams belong to the task's tenant: a control key sees every task but streams its own.
        if (err instanceof ApiError && err.status === 404)
          setError(
            new Error("Not this key's task: a task streams only to its own tenant's keys.", { cause: err }),
          );
        else setError(err instanceof Error ? err : new Error(String(err)));
      });
    return () => stop.abort();
  }, [api, id]);

  const ended = w.terminal !== undefined || (summary !== undefined && ENDED.has(summary.state));
  const cancel = async () => {
    setCanceling(true);
    try {
      await api.cancel(id);
      props.onChange();
    } catch (err) {
      setError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      setCanceling(false);
    }
  };
  const status = w.terminal
    ? w.terminal.event === 'error'
      ? `error ${String((w.terminal.data as { code?: string }).code ?? '')}`
      : (w.terminal.data as { canceled?: boolean }).canceled === true
        ? 'canceled'
        : 'completed'
    : w.started
      ? 'streaming'
      : 'waiting for the first event';
  return (
    <Section title={`Task ${id.slice(0, 8)}`} id="task-stream-title">
      <div class="toolbar">
        <span>
          Stream:{' '}
          <Badge value={status} tone={w.terminal ? (w.terminal.event === 'error' ? 'bad' : 'muted') : 'ok'} />
        </span>
        <span class="muted small">
          {w.tokens} tokens · {w.events} events
        </span>
        <button type="button" class="danger" disabled={ended || canceling} onClick={() => void cancel()}>
          Cancel task
        </button>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </div>
      <p class="mono small">{id}</p>
      <ErrorLine error={error} />
      <h3>Output</h3>
      <pre class="stream" aria-live="off" data-testid="stream-text">
        {w.text}
      </pre>
      {w.metrics ? (
        <>
          <h3>Latest metrics frame</h3>
          <KeyValues v={w.metrics} />
        </>
      ) : null}
      {w.terminal ? (
        <>
          <h3>Terminal event: {w.terminal.event}</h3>
          <div role="status" data-testid="terminal">
            <KeyValues v={w.terminal.data} />
          </div>
        </>
      ) : null}
      {summary ? (
        <p class="small muted">
          Pool {summary.pool_id} · deadline {ms(summary.deadline_ms)}
          {summary.queue_position === undefined ? '' : ` · position ${summary.queue_position}`}
        </p>
      ) : null}
    </Section>
  );
}

function KeyValues({ v }: { v: object }) {
  return (
    <dl class="kv">
      {Object.entries(v).map(([k, x]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{typeof x === 'string' ? x : JSON.stringify(x)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** TTFT percentiles and tokens/s over the scraped history. */
export function TaskCharts() {
  const m = useMetrics();
  if (m.kind !== 'ok') return m.kind === 'forbidden' ? <p class="muted small">{m.message}</p> : null;
  const s = m.scrapes;
  const times: number[] = [];
  const p50: (number | null)[] = [];
  const p95: (number | null)[] = [];
  const tps: (number | null)[] = [];
  // Each point looks back a few scrapes, so a quiet 2 s does not read as a gap.
  const back = 5;
  for (let i = 1; i < s.length; i++) {
    const a: Scrape = s[Math.max(0, i - back)]!;
    const b: Scrape = s[i]!;
    times.push(b.t);
    p50.push(quantileBetween(a.samples, b.samples, 'latency_first_token_ms', 0.5, INTERACTIVE) ?? null);
    p95.push(quantileBetween(a.samples, b.samples, 'latency_first_token_ms', 0.95, INTERACTIVE) ?? null);
    const dt = b.t - a.t;
    tps.push(
      dt > 0
        ? Math.max(0, sum(b.samples, 'tokens_out_total') - sum(a.samples, 'tokens_out_total')) / dt
        : null,
    );
  }
  return (
    <div class="charts">
      <Chart
        title="Time to first token (interactive)"
        unit="ms"
        times={times}
        series={[
          { label: 'p50', values: p50 },
          { label: 'p95', values: p95 },
        ]}
      />
      <Chart
        title="Tokens generated"
        unit="tokens/s"
        times={times}
        series={[{ label: 'all pools', values: tps }]}
      />
    </div>
  );
}
