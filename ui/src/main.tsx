/**
 * The llama-orch operator console. Signed in with an API key kept in this browser tab's session
 * storage only; what it shows and offers follows the key's scopes, because every view is a call
 * of the public API with that key.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Api, ApiError } from './api.js';
import { scrapeWith } from './metrics-history.js';
import { Artifacts } from './views/artifacts.js';
import { Catalog } from './views/catalog.js';
import { Fleet } from './views/fleet.js';
import { Operations } from './views/operations.js';
import { Queues } from './views/queues.js';
import { Sessions } from './views/sessions.js';
import { Tasks } from './views/tasks.js';
import './console.css';

const KEY_STORAGE = 'llorch.console.key';

interface Signed {
  readonly api: Api;
  /** The key has the control scope: fleet, catalog and operations. */
  readonly control: boolean;
}

type ViewId = 'fleet' | 'queues' | 'tasks' | 'sessions' | 'catalog' | 'artifacts' | 'operations';

interface ViewDef {
  readonly id: ViewId;
  readonly title: string;
  readonly control: boolean;
}

const VIEWS: readonly ViewDef[] = [
  { id: 'fleet', title: 'Fleet', control: true },
  { id: 'queues', title: 'Queues', control: false },
  { id: 'tasks', title: 'Tasks', control: false },
  { id: 'sessions', title: 'Sessions', control: false },
  { id: 'catalog', title: 'Catalog', control: true },
  { id: 'artifacts', title: 'Artifacts', control: false },
  { id: 'operations', title: 'Operations', control: true },
];

/** What a key may do, asked of the API itself: a listing needs a key of either plane. */
async function probe(key: string): Promise<Signed> {
  const api = new Api(key);
  try {
    await api.listTasks({ limit: 1 });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      throw new Error('This API key is not known to the orchestrator.', { cause: err });
    if (err instanceof ApiError && err.status === 403)
      throw new Error('This API key has neither the data nor the control scope.', { cause: err });
    throw err;
  }
  try {
    await api.replicaSets();
    return { api, control: true };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { api, control: false };
    throw err;
  }
}

const viewFromHash = (): ViewId | undefined => {
  const id = location.hash.replace(/^#\/?/, '');
  return VIEWS.find((v) => v.id === id)?.id;
};

function App() {
  const [signed, setSigned] = useState<Signed | undefined>(undefined);
  const [restoring, setRestoring] = useState(sessionStorage.getItem(KEY_STORAGE) !== null);
  const [view, setView] = useState<ViewId | undefined>(viewFromHash());

  useEffect(() => {
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved === null) return;
    probe(saved)
      .then(setSigned)
      .catch(() => sessionStorage.removeItem(KEY_STORAGE))
      .finally(() => setRestoring(false));
  }, []);
  useEffect(() => {
    const on = () => setView(viewFromHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => scrapeWith(signed?.api), [signed]);

  if (restoring) return <p class="loading">Signing in…</p>;
  if (!signed)
    return (
      <SignIn
        onSignedIn={(s, key) => {
          sessionStorage.setItem(KEY_STORAGE, key);
          setSigned(s);
        }}
      />
    );

  const allowed = VIEWS.filter((v) => signed.control || !v.control);
  const current = allowed.find((v) => v.id === view) ?? allowed[0]!;
  const signOut = () => {
    sessionStorage.removeItem(KEY_STORAGE);
    setSigned(undefined);
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">llama-orch</span>
        <nav aria-label="Views">
          <ul>
            {allowed.map((v) => (
              <li key={v.id}>
                <a href={`#/${v.id}`} aria-current={v.id === current.id ? 'page' : undefined}>
                  {v.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {signed.control ? 'control key' : 'data key'}
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <h1>{current.title}</h1>
        {signed.control ? null : (
          <p class="muted small" role="note">
            Signed in with a data key: the fleet, the catalog and pool operations need a control key.
          </p>
        )}
        <Current view={current.id} signed={signed} />
      </main>
    </>
  );
}

function Current({ view, signed }: { view: ViewId; signed: Signed }) {
  const { api } = signed;
  switch (view) {
    case 'fleet':
      return <Fleet api={api} />;
    case 'queues':
      return <Queues api={api} />;
    case 'tasks':
      return <Tasks api={api} />;
    case 'sessions':
      return <Sessions api={api} />;
    case 'catalog':
      return <Catalog api={api} />;
    case 'artifacts':
      return <Artifacts api={api} />;
    case 'operations':
      return <Operations api={api} />;
  }
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Signed, key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin" id="main">
      <h1>llama-orch console</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          probe(key.trim())
            .then((s) => onSignedIn(s, key.trim()))
            .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
            .finally(() => setBusy(false));
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-describedby="key-help"
        />
        <p id="key-help" class="small muted">
          Kept in this tab only, until it closes or you sign out. Leave empty for a keyless local
          orchestrator.
        </p>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

render(<App />, document.getElementById('app')!);
