/** Catalog: entries with digest and verification, lifecycle, and the actions of control keys. */
import { useState } from 'preact/hooks';
import type { Api, CatalogModel } from '../api.js';
import { useConfirmedActions, usePoll } from '../hooks.js';
import { Badge, Confirm, ErrorLine, Section, ago } from '../widgets.js';

const STATES = ['Draft', 'Active', 'Canary', 'Deprecated', 'Retired'] as const;
type State = (typeof STATES)[number];

export function Catalog({ api }: { api: Api }) {
  // Each entry as `GET /v1/catalog/models/{id}` has it: with its lifecycle history.
  const { data, error, refresh } = usePoll(async () => {
    const list = await api.catalog();
    return { models: await Promise.all(list.models.map((m) => api.catalogModel(m.id))) };
  }, 3_000);
  const { pending, close, note, failed, setFailed, ask } = useConfirmedActions(refresh);
  const [verifications, setVerifications] = useState<Record<string, string>>({});
  const models = data?.models ?? [];

  const verify = async (id: string) => {
    setFailed(undefined);
    try {
      const v = await api.verify(id);
      setVerifications((x) => ({ ...x, [id]: `${v.result}${v.reason ? ` (${v.reason})` : ''}` }));
      refresh();
    } catch (err) {
      setFailed(err instanceof Error ? err : new Error(String(err)));
    }
  };

  return (
    <div class="view">
      <ErrorLine error={error ?? failed} />
      {note ? (
        <p role="status" class="notice">
          {note}
        </p>
      ) : null}
      <Section title="Models">
        <table>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">State</th>
              <th scope="col">Digest</th>
              <th scope="col">Verification</th>
              <th scope="col">History</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <ModelRow
                key={m.id}
                m={m}
                verification={verifications[m.id]}
                verify={verify}
                ask={ask}
                api={api}
                actives={models.filter((x) => x.state === 'Active' && x.id !== m.id).map((x) => x.id)}
              />
            ))}
          </tbody>
        </table>
      </Section>
      <Confirm pending={pending} onClose={close} />
    </div>
  );
}

function ModelRow(props: {
  m: CatalogModel;
  api: Api;
  verification: string | undefined;
  verify: (id: string) => Promise<void>;
  ask: (title: string, body: string, confirm: string, run: () => Promise<string>) => void;
  /** Active models this one could take a canary share of. */
  actives: readonly string[];
}) {
  const { m, api, ask, actives } = props;
  const [target, setTarget] = useState<State>('Active');
  const [stable, setStable] = useState<string>('');
  const [percent, setPercent] = useState(10);
  const canaryOf = actives.includes(stable) ? stable : actives[0];
  const startCanary = (of: string) =>
    ask(
      `Start canary ${m.id}`,
      `${m.id} becomes a Canary of ${of} and takes ${percent}% of its new sessions (by session id); running sessions stay where they are.`,
      'Start canary',
      async () => {
        const after = await api.setState(m.id, { state: 'Canary', canary_of: of, percent });
        return `${m.id} is now ${after.state} of ${after.canary_of ?? of} (${after.canary_percent ?? percent}%)`;
      },
    );
  const h = m.history ?? [];
  const change = (to: State, title: string, body: string, confirm: string) =>
    ask(title, body, confirm, async () => {
      const after = await api.setState(m.id, { state: to });
      return `${m.id} is now ${after.state}`;
    });
  return (
    <tr data-model={m.id}>
      <th scope="row">
        {m.id}
        <div class="muted small">{m.source}</div>
        {m.tags && m.tags.length > 0 ? <div class="small">tags: {m.tags.join(', ')}</div> : null}
      </th>
      <td class="state">
        <Badge value={m.state} />
        {m.canary_of ? (
          <div class="small">
            canary of {m.canary_of} ({m.canary_percent ?? 0}%)
          </div>
        ) : null}
      </td>
      <td class="mono small" title={m.digest}>
        {m.digest.slice(0, 19)}…
      </td>
      <td>
        <Badge
          value={m.verified === true ? 'verified' : 'unverified'}
          tone={m.verified === true ? 'ok' : 'warn'}
        />
        <div class="small">policy {m.trust_policy ?? '—'}</div>
        {props.verification ? <div class="small">last check: {props.verification}</div> : null}
      </td>
      <td class="small">
        {h.length > 0 || m.created_ms === undefined ? null : <div>created {ago(m.created_ms)}</div>}
        <ol class="plain">
          {h.map((e, i) => (
            <li key={i}>
              {e.from === undefined ? `created ${e.to}` : `${e.from} → ${e.to}`} {ago(e.at_ms)}
              {e.reason === undefined ? null : <span class="muted"> ({e.reason})</span>}
            </li>
          ))}
        </ol>
      </td>
      <td>
        <div class="ops-stack">
          <div class="ops">
            <button type="button" onClick={() => void props.verify(m.id)}>
              Verify {m.id}
            </button>
            {m.state === 'Canary' ? (
              <>
                <button
                  type="button"
                  onClick={() =>
                    change(
                      'Active',
                      `Promote canary ${m.id}`,
                      `${m.id} becomes Active and takes every new session; ${m.canary_of ?? 'the model it canaries'} becomes Deprecated.`,
                      'Promote',
                    )
                  }
                >
                  Promote {m.id}
                </button>
                <button
                  type="button"
                  class="danger"
                  onClick={() =>
                    change(
                      'Deprecated',
                      `Roll back canary ${m.id}`,
                      `${m.id} becomes Deprecated and takes no new sessions; ${m.canary_of ?? 'the stable model'} serves them all.`,
                      'Roll back',
                    )
                  }
                >
                  Roll back {m.id}
                </button>
              </>
            ) : null}
          </div>
          <div class="ops">
            <label>
              State
              <select
                value={target}
                onChange={(e) => setTarget((e.target as HTMLSelectElement).value as State)}
              >
                {STATES.filter((s) => s !== 'Canary').map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <button
              type="button"
              disabled={target === m.state}
              onClick={() =>
                change(
                  target,
                  `Set ${m.id} to ${target}`,
                  `${m.id} goes from ${m.state} to ${target}.`,
                  'Change state',
                )
              }
            >
              Apply to {m.id}
            </button>
          </div>
          {m.state === 'Active' && canaryOf !== undefined ? (
            <fieldset class="canary">
              <legend>Canary</legend>
              <label>
                of{' '}
                <select value={canaryOf} onChange={(e) => setStable((e.target as HTMLSelectElement).value)}>
                  {actives.map((id) => (
                    <option key={id} value={id}>
                      {id}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                share %{' '}
                <input
                  type="number"
                  min={0}
                  max={100}
                  step={1}
                  value={percent}
                  onInput={(e) => setPercent(Number((e.target as HTMLInputElement).value))}
                />
              </label>
              <button
                type="button"
                disabled={!(percent >= 0 && percent <= 100)}
                onClick={() => startCanary(canaryOf)}
              >
                Start canary {m.id}
              </button>
            </fieldset>
          ) : null}
        </div>
      </td>
    </tr>
  );
}
