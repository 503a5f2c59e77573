/**
 * A token bucket that keeps a sender under a bandwidth cap, so replication does not starve
 * training traffic. `pace(n)` resolves when `n` more bytes may be sent. The clock and the sleep
 * are injected so tests can run it on virtual time.
 */
export interface PacerOptions {
  /** The cap, bytes per second; Infinity (or 0) disables pacing. */
  readonly bytesPerSecond: number;
  /** How many bytes may go out at once after an idle period. */
  readonly burstBytes?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function createPacer(options: PacerOptions): (bytes: number) => Promise<void> {
  const rate = options.bytesPerSecond;
  if (!(rate > 0) || !Number.isFinite(rate)) return () => Promise.resolve();
  const burst = options.burstBytes ?? Math.max(1 << 20, rate / 20);
  const now = options.now ?? (() => performance.now());
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let tokens = burst;
  let last = now();
  return async (bytes: number) => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
    tokens -= bytes;
    if (tokens < 0) await sleep((-tokens / rate) * 1000);
  };
}
