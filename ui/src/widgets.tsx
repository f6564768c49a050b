/** Small shared pieces: state badges, errors, confirmations and number formats. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'muted';

const TONES: Record<string, Tone> = {
  ready: 'ok',
  streaming: 'ok',
  dispatched: 'ok',
  completed: 'ok',
  Active: 'ok',
  succeeded: 'ok',
  closed: 'ok',
  verified: 'ok',
  queued: 'info',
  starting: 'info',
  preloading: 'info',
  'self-test': 'info',
  Canary: 'info',
  Draft: 'muted',
  in_progress: 'warn',
  draining: 'warn',
  reloading: 'warn',
  recovering: 'warn',
  Deprecated: 'warn',
  canceled: 'muted',
  stopped: 'muted',
  Retired: 'muted',
  unready: 'bad',
  failed: 'bad',
  evicted: 'bad',
  open: 'bad',
  rolled_back: 'warn',
  stale: 'bad',
};

/** A state as text with a colour: the word carries the meaning, the colour only helps. */
export function Badge({ value, tone }: { value: string; tone?: Tone }) {
  return <span class={`badge badge-${tone ?? TONES[value] ?? 'muted'}`}>{value}</span>;
}

export function ErrorLine({ error }: { error: Error | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Section({
  title,
  children,
  id,
}: {
  title: string;
  children: ComponentChildren;
  id?: string;
}) {
  return (
    <section class="panel" aria-labelledby={id ?? slug(title)}>
      <h2 id={id ?? slug(title)}>{title}</h2>
      {children}
    </section>
  );
}

const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');

export interface Pending {
  readonly title: string;
  readonly body: string;
  readonly confirm: string;
  readonly run: () => Promise<void>;
}

/**
 * A modal confirmation (the native `<dialog>`: focus moves into it, Escape closes it) before an
 * action that changes the fleet.
 */
export function Confirm({ pending, onClose }: { pending: Pending | undefined; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (pending && !d.open) d.showModal();
    if (!pending && d.open) d.close();
  }, [pending]);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={onClose}>
      {pending && (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            const p = pending;
            onClose();
            void p.run();
          }}
        >
          <h2 id="confirm-title">{pending.title}</h2>
          <p>{pending.body}</p>
          <div class="actions">
            <button type="button" onClick={onClose}>
              Keep as is
            </button>
            <button type="submit" class="danger" autofocus>
              {pending.confirm}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

export function bytes(n: number | undefined): string {
  if (n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function ms(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—';
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(1)} s`;
  if (n < 3_600_000) {
    // Whole seconds first, so 599.6 s reads 10 min 0 s, not 9 min 60 s.
    const s = Math.round(n / 1000);
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${(n / 3_600_000).toFixed(1)} h`;
}

/** How long ago an epoch-ms instant was. */
export function ago(epochMs: number | undefined, now = Date.now()): string {
  if (epochMs === undefined) return '—';
  return `${ms(Math.max(0, now - epochMs))} ago`;
}

export const pct = (x: number | undefined): string => (x === undefined ? '—' : `${Math.round(x * 100)}%`);

/** A bar with its value in words, for utilization and memory. */
export function Meter({ value, label }: { value: number; label: string }) {
  const v = Math.max(0, Math.min(1, value));
  return (
    <span
      class="meter"
      role="meter"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(v * 100)}
      aria-label={label}
    >
      <span class={`meter-fill ${v > 0.9 ? 'meter-high' : ''}`} style={{ width: `${v * 100}%` }} />
    </span>
  );
}
