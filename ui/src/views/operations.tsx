/** Operations: drain, reload and roll back a pool, with the operation's progress. */
import { useState } from 'preact/hooks';
import type { Api, PoolHealth } from '../api.js';
import { useFleet } from '../fleet-data.js';
import { useConfirmedActions } from '../hooks.js';
import { Badge, Confirm, ErrorLine, Section } from '../widgets.js';
import { PoolState } from './fleet.js';

export function Operations({ api }: { api: Api }) {
  const { data, error, refresh } = useFleet(api, 1_000);
  const { pending, close, note: done, failed, ask } = useConfirmedActions(refresh);
  const act = (title: string, body: string, confirm: string, run: () => Promise<unknown>) =>
    ask(title, body, confirm, async () => {
      await run();
      return `${title}: accepted`;
    });
  return (
    <div class="view">
      <ErrorLine error={error ?? failed} />
      {done ? (
        <p role="status" class="notice">
          {done}
        </p>
      ) : null}
      <Section title="Pool operations">
        <table>
          <thead>
            <tr>
              <th scope="col">Pool</th>
              <th scope="col">State</th>
              <th scope="col">Last operation</th>
              <th scope="col">Queue</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(data?.pools ?? []).map((p) => (
              <PoolRow key={p.pool_id} p={p} api={api} act={act} />
            ))}
          </tbody>
        </table>
      </Section>
      <Confirm pending={pending} onClose={close} />
    </div>
  );
}

function PoolRow(props: {
  p: PoolHealth;
  api: Api;
  act: (title: string, body: string, confirm: string, run: () => Promise<unknown>) => void;
}) {
  const { p, api, act } = props;
  const [deadline, setDeadline] = useState('30000');
  const [model, setModel] = useState('');
  const l = p.lifecycle;
  const id = p.pool_id;
  return (
    <tr data-pool={id}>
      <th scope="row">{id}</th>
      <td>
        <PoolState p={p} />
      </td>
      <td data-testid={`lifecycle-${id}`}>
        {l === undefined ? (
          <span class="muted">none</span>
        ) : (
          <>
            {l.operation} <Badge value={l.state ?? 'unknown'} />
            {l.model_ref ? <div class="small">to {l.model_ref}</div> : null}
            {l.cause ? <div class="small">{l.cause}</div> : null}
          </>
        )}
      </td>
      <td>{p.metrics.queue_depth ?? 0}</td>
      <td>
        <div class="ops">
          <label>
            Deadline (ms)
            <input
              type="number"
              min={0}
              step={1000}
              value={deadline}
              onInput={(e) => setDeadline((e.target as HTMLInputElement).value)}
            />
          </label>
          <button
            type="button"
            disabled={p.draining}
            onClick={() =>
              act(
                `Drain ${id}`,
                `Pool ${id} stops taking new work; the work it holds gets ${deadline} ms to finish.`,
                'Drain',
                () => api.drain(id, Number(deadline)),
              )
            }
          >
            Drain {id}
          </button>
          <label>
            New model
            <input
              type="text"
              value={model}
              placeholder="model ref"
              onInput={(e) => setModel((e.target as HTMLInputElement).value)}
            />
          </label>
          <button
            type="button"
            disabled={model === '' || p.reloading}
            onClick={() =>
              act(`Reload ${id}`, `Pool ${id} swaps its model to ${model}.`, 'Reload', () =>
                api.reload(id, { new_model_ref: model, deadline_ms: Number(deadline) }),
              )
            }
          >
            Reload {id}
          </button>
          <button
            type="button"
            disabled={p.reloading}
            onClick={() =>
              act(`Roll back ${id}`, `Pool ${id} goes back to its previous model.`, 'Roll back', () =>
                api.reload(id, { rollback: true, deadline_ms: Number(deadline) }),
              )
            }
          >
            Roll back {id}
          </button>
        </div>
      </td>
    </tr>
  );
}
