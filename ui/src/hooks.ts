/** Polling at a modest rate: one request in flight per view, none while the tab is hidden. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Pending } from './widgets.js';

export interface Polled<T> {
  readonly data: T | undefined;
  readonly error: Error | undefined;
  readonly refresh: () => void;
}

export function usePoll<T>(
  load: () => Promise<T>,
  everyMs: number,
  deps: readonly unknown[] = [],
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      if (document.visibilityState !== 'hidden') {
        try {
          const v = await loadRef.current();
          if (live) {
            setData(v);
            setError(undefined);
          }
        } catch (err) {
          if (live) setError(err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (live) timer = setTimeout(() => void run(), everyMs);
    };
    void run();
    return () => {
      live = false;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [everyMs, tick, ...deps]);
  const refresh = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, refresh };
}

/** An action a person confirms first (the `Confirm` dialog), and how it went. */
export interface ConfirmedActions {
  /** The action awaiting confirmation, for `<Confirm pending=…>`. */
  readonly pending: Pending | undefined;
  readonly close: () => void;
  /** What the last confirmed action said it did. */
  readonly note: string | undefined;
  /** Why the last action failed. */
  readonly failed: Error | undefined;
  readonly setFailed: (err: Error | undefined) => void;
  /** Asks for confirmation, then runs `run` (its result is the note) and refreshes the view. */
  readonly ask: (title: string, body: string, confirm: string, run: () => Promise<string>) => void;
}

export function useConfirmedActions(refresh: () => void): ConfirmedActions {
  const [pending, setPending] = useState<Pending | undefined>(undefined);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [failed, setFailed] = useState<Error | undefined>(undefined);
  const ask = (title: string, body: string, confirm: string, run: () => Promise<string>) =>
    setPending({
      title,
      body,
      confirm,
      run: async () => {
        setFailed(undefined);
        try {
          setNote(await run());
          refresh();
        } catch (err) {
          setFailed(err instanceof Error ? err : new Error(String(err)));
        }
      },
    });
  return { pending, close: () => setPending(undefined), note, failed, setFailed, ask };
}
