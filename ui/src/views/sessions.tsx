/**
 * Sessions of the signed-in tenant: the API reads a session by id, so the console lists those its
 * key's recent tasks name (and any id typed in); another tenant's sessions answer 404 and are not
 * shown.
 */
import { useState } from 'preact/hooks';
import { ApiError, type Api, type Session } from '../api.js';
import { usePoll } from '../hooks.js';
import { ErrorLine, Section, bytes, ms } from '../widgets.js';

export function Sessions({ api }: { api: Api }) {
  const [extra, setExtra] = useState<string[]>([]);
  const [typed, setTyped] = useState('');
  const { data, error } = usePoll(
    async () => {
      // Sessions that ran something first: a queued first turn has nothing to show yet.
      const [running, ended, queued] = await Promise.all(
        (['running', 'ended', 'queued'] as const).map((state) => api.listTasks({ state, limit: 200 })),
      );
      const named = [...running!.tasks, ...ended!.tasks, ...queued!.tasks].map((t) => t.session_id);
      const ids = [...new Set([...extra, ...named])].slice(0, 40);
      const found = await Promise.all(
        ids.map((id) =>
          api.session(id).catch((err: unknown) => {
            if (err instanceof ApiError && (err.status === 404 || err.status === 403)) return undefined;
            throw err;
          }),
        ),
      );
      return found
        .filter((s): s is Session => s !== undefined)
        .sort((a, b) => b.turns - a.turns || (b.tokens_used ?? 0) - (a.tokens_used ?? 0))
        .slice(0, 25);
    },
    3_000,
    [extra.join(',')],
  );
  return (
    <div class="view">
      <Section title="Sessions">
        <form
          class="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            if (typed.trim() !== '') setExtra((x) => [typed.trim(), ...x]);
            setTyped('');
          }}
        >
          <label>
            Session id{' '}
            <input
              type="text"
              value={typed}
              onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
            />
          </label>
          <button type="submit">Look up</button>
        </form>
        <ErrorLine error={error} />
        {data && data.length === 0 ? (
          <p class="muted">No sessions of this tenant among its recent tasks.</p>
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
              {(data ?? []).map((s) => (
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
      </Section>
    </div>
  );
}
