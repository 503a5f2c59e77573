/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The delay before retry `attempt` (1-based): `initialMs` doubling up to `maxMs`. */
export function backoffMs(
  attempt: number,
  options: { readonly initialMs: number; readonly maxMs: number },
): number {
  return Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, attempt - 1));
}
