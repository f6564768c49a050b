/**
 * Sessions of the signed-in tenant (`GET /v1/sessions`): the API lists only the key's own tenant's
 * sessions, so another tenant's never appear. A control key has no data-plane sessions: the view
 * says so instead of an error.
 */
import { useState } from 'preact/hooks';
import { ApiError, type Api } from '../api.js';
import { usePoll } from '../hooks.js';
import { ErrorLine, Section, bytes, ms } from '../widgets.js';

const PAGE = 25;

export function Sessions({ api }: { api: Api }) {
  const [filter, setFilter] = useState('');
  const [all, setAll] = useState(false);
  const { data, error } = usePoll(async () => {
    try {
      return { sessions: (await api.sessions(200)).sessions, dataScope: true };
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) return { sessions: [], dataScope: false };
      throw err;
    }
  }, 3_000);
  const matching = (data?.sessions ?? []).filter((s) => s.session_id.includes(filter.trim()));
  // A page a person can read: the most recent first, the rest on request.
  const shown = all ? matching : matching.slice(0, PAGE);
  return (
    <div class="view">
      <Section title="Sessions">
        <div class="toolbar">
          <label>
            Filter by session id{' '}
            <input
              type="search"
              value={filter}
              onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
            />
          </label>
          {data ? (
            <span class="muted" aria-live="polite">
              {matching.length} of {data.sessions.length} live sessions
              {shown.length < matching.length ? `, the ${shown.length} most recent shown` : ''}
            </span>
          ) : null}
        </div>
        <ErrorLine error={error} />
        {data && !data.dataScope ? (
          <p class="muted">
            Sessions belong to data-plane tenants: sign in with a data key to see its sessions.
          </p>
        ) : data && shown.length === 0 ? (
          <p class="muted">
            {filter.trim() === '' ? 'This tenant has no live sessions.' : 'No session id matches.'}
          </p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">Turns</th>
                <th scope="col">TTL left</th>
                <th scope="col">KV</th>
                <th scope="col">Used</th>
                <th scope="col">Budget left</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((s) => (
                <tr key={s.session_id}>
                  <th scope="row" class="mono">
                    {s.session_id}
                  </th>
                  <td>{s.turns}</td>
                  <td>{ms(s.ttl_ms_remaining)}</td>
                  <td>
                    {bytes(s.kv_bytes)} {s.kv_warmth ? 'warm' : 'cold'}
                    {s.replica_id ? <div class="small">on {s.replica_id}</div> : null}
                  </td>
                  <td class="small">
                    {s.tokens_used ?? 0} tokens · {ms(s.time_used_ms ?? 0)} · cost {s.cost_used ?? 0}
                  </td>
                  <td class="small">
                    {s.tokens_remaining === undefined &&
                    s.time_remaining_ms === undefined &&
                    s.cost_remaining === undefined
                      ? 'no budget'
                      : [
                          s.tokens_remaining === undefined ? null : `${s.tokens_remaining} tokens`,
                          s.time_remaining_ms === undefined ? null : ms(s.time_remaining_ms),
                          s.cost_remaining === undefined ? null : `cost ${s.cost_remaining}`,
                        ]
                          .filter((x) => x !== null)
                          .join(' · ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {shown.length < matching.length ? (
          <button type="button" onClick={() => setAll(true)}>
            Show all {matching.length} sessions
          </button>
        ) : null}
      </Section>
    </div>
  );
}
