import type { CliOutput } from './output.ts';

/** What {@link watch} draws: fetched once a second. */
export interface WatchOptions<T> {
  readonly output: CliOutput;
  /** True when stdout is a terminal: the screen is redrawn in place each second. */
  readonly isTty: boolean;
  readonly fetch: (signal: AbortSignal) => Promise<T>;
  /** What counts as a change; volatile fields (heartbeat ages) stay out of it. */
  readonly key: (value: T) => string;
  readonly render: (value: T) => string;
  /** True when nothing more can change (a finished job): the watch ends by itself. */
  readonly done?: (value: T) => boolean;
  /** Printed between two frames when stdout is not a terminal (a blank line between tables). */
  readonly separator?: string;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * `--watch`: polls once a second (as `watch -n 1` would; the SSE stream would need a ticket and
 * an event-to-view mapping for every command, and a list this size is cheap to fetch) until
 * Ctrl-C or `done`. On a terminal the screen is redrawn each second, so ages keep counting; when
 * stdout is not a terminal each new state is printed once, as it comes, so a pipe or a test
 * reads a clean sequence of states.
 */
export async function watch<T>(options: WatchOptions<T>): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const abort = options.signal;
  abort?.addEventListener('abort', onSignal, { once: true });
  let lastKey: string | null = null;
  try {
    while (!stop.signal.aborted) {
      let value: T;
      try {
        value = await options.fetch(stop.signal);
      } catch (error) {
        if (stop.signal.aborted) break;
        throw error;
      }
      const key = options.key(value);
      if (options.isTty)
        // Home, clear the screen, draw: as `watch` does, without the alternate screen so the
        // last frame stays visible after Ctrl-C.
        options.output.out(
          `\x1b[H\x1b[2J${new Date().toISOString().slice(11, 19)}  every 1 s, Ctrl-C to stop\n\n${options.render(value)}`,
        );
      else if (key !== lastKey)
        options.output.out(
          `${lastKey !== null && options.separator !== undefined ? `${options.separator}\n` : ''}${options.render(value)}`,
        );
      lastKey = key;
      if (options.done?.(value) === true) break;
      await sleep(options.intervalMs ?? 1000, stop.signal);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    abort?.removeEventListener('abort', onSignal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
