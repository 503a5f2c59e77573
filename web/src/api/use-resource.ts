import { useCallback, useEffect, useRef, useState } from 'react';

/** What a view knows about data it fetches: not yet, the data, or why not. */
export interface Resource<T> {
  readonly data: T | null;
  readonly error: Error | null;
  readonly loading: boolean;
  /** Fetches again now (e.g. when the event stream says something changed). */
  readonly reload: () => void;
}

/**
 * Fetches with `load` when `key` changes, again every `intervalMs` (when given) and on
 * `reload()`. The last good data stays while a later fetch fails, so a blip in the
 * connection shows as an error line, not an empty page.
 */
export function useResource<T>(
  key: string,
  load: (signal: AbortSignal) => Promise<T>,
  options: { intervalMs?: number } = {},
): Resource<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });
  const shownKey = useRef(key);

  useEffect(() => {
    if (shownKey.current !== key) {
      shownKey.current = key;
      setData(null);
      setLoading(true);
    }
    const controller = new AbortController();
    loadRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return;
        setData(value);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (controller.signal.aborted) return;
        setError(e instanceof Error ? e : new Error(String(e)));
        setLoading(false);
      },
    );
    return () => controller.abort();
  }, [key, tick]);

  const { intervalMs } = options;
  useEffect(() => {
    if (intervalMs === undefined) return;
    const timer = setInterval(() => setTick((t) => t + 1), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs, key]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
