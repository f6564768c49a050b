/** Artifacts: browse by tag, open one, follow its lineage (parents and children). */
import { useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { usePoll } from '../hooks.js';
import { ErrorLine, Section, ago } from '../widgets.js';

export function Artifacts({ api }: { api: Api }) {
  const [tag, setTag] = useState('');
  const [applied, setApplied] = useState('');
  const [open, setOpen] = useState<string | undefined>(undefined);
  const list = usePoll(
    () => api.artifacts({ limit: 100, ...(applied === '' ? {} : { tag: applied }) }),
    5_000,
    [applied],
  );
  return (
    <div class="view split">
      <Section title="Artifacts">
        <form
          class="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            setApplied(tag.trim());
          }}
        >
          <label>
            Tag{' '}
            <input type="text" value={tag} onInput={(e) => setTag((e.target as HTMLInputElement).value)} />
          </label>
          <button type="submit">Filter</button>
        </form>
        <ErrorLine error={list.error} />
        <table>
          <thead>
            <tr>
              <th scope="col">Artifact</th>
              <th scope="col">Kind</th>
              <th scope="col">Tags</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.artifacts ?? []).map((a) => (
              <tr key={a.id}>
                <th scope="row">
                  <button
                    type="button"
                    class="link mono"
                    onClick={() => setOpen(a.id)}
                    aria-label={`Open artifact ${a.id}`}
                  >
                    {a.id.slice(0, 19)}…
                  </button>
                </th>
                <td>{a.kind}</td>
                <td>{(a.tags ?? []).join(', ')}</td>
                <td class="small">{ago(a.created_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {open === undefined ? null : <ArtifactDetail key={open} api={api} id={open} onOpen={setOpen} />}
    </div>
  );
}

function ArtifactDetail({ api, id, onOpen }: { api: Api; id: string; onOpen: (id: string) => void }) {
  const { data, error } = usePoll(async () => {
    const a = await api.artifact(id);
    // Lineage: the chain of parents up to the root, and this one's direct children.
    const parents: string[] = [];
    let p = a.parent;
    while (p !== undefined && parents.length < 20) {
      parents.push(p);
      p = (await api.artifact(p)).parent;
    }
    const children = (await api.artifacts({ parent: id, limit: 50 })).artifacts;
    return { a, parents, children };
  }, 10_000);
  return (
    <Section title={`Artifact ${id.slice(0, 19)}…`} id="artifact-detail">
      <ErrorLine error={error} />
      {data ? (
        <>
          <p class="small mono">{data.a.id}</p>
          <h3>Lineage</h3>
          <ol class="lineage">
            {[...data.parents].reverse().map((p) => (
              <li key={p}>
                <button type="button" class="link mono" onClick={() => onOpen(p)}>
                  {p.slice(0, 19)}…
                </button>
              </li>
            ))}
            <li aria-current="true">
              <strong class="mono">{id.slice(0, 19)}…</strong> ({data.a.kind})
            </li>
          </ol>
          {data.children.length > 0 ? (
            <>
              <h3>Children</h3>
              <ul class="plain">
                {data.children.map((c) => (
                  <li key={c.id}>
                    <button type="button" class="link mono" onClick={() => onOpen(c.id)}>
                      {c.id.slice(0, 19)}…
                    </button>{' '}
                    {c.kind}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h3>Content</h3>
          <pre class="stream">{JSON.stringify(data.a.content, null, 2)}</pre>
          {data.a.metadata ? (
            <>
              <h3>Metadata</h3>
              <pre class="stream">{JSON.stringify(data.a.metadata, null, 2)}</pre>
            </>
          ) : null}
        </>
      ) : null}
    </Section>
  );
}
