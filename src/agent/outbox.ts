import { isAuthFailure, isRetryable, type Reply } from './control-client.ts';
import { backoffMs, sleep } from './sleep.ts';

export interface OutboxOptions<T> {
  /** Delivers one batch (at most `maxBatch` items, in order). */
  readonly send: (batch: readonly T[], signal: AbortSignal) => Promise<Reply<unknown>>;
  readonly maxBatch: number;
  /** The queue's capacity in `weight` units; the oldest items are dropped beyond it. */
  readonly maxWeight: number;
  readonly weight?: (item: T) => number;
  /** Items given up: rejected by the control plane, or dropped for room. */
  readonly onDrop?: (items: readonly T[], why: string) => void;
  /** The control plane does not know this node: re-join (sending is retried after). */
  readonly onAuthFailure?: () => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

/**
 * An ordered queue of messages for the control plane, delivered in batches and retried with
 * backoff while the control plane is unreachable, so nothing is lost when it restarts (up to
 * the queue's capacity). Starts paused: `resume` once the node has joined.
 */
export class Outbox<T> {
  readonly #options: OutboxOptions<T>;
  readonly #queue: T[] = [];
  readonly #closed = new AbortController();
  #weight = 0;
  #paused = true;
  #pumping = false;
  #wake: AbortController | null = null;
  readonly #idle: (() => void)[] = [];

  constructor(options: OutboxOptions<T>) {
    this.#options = options;
  }

  /** How many items wait for delivery. */
  get size(): number {
    return this.#queue.length;
  }

  push(item: T): void {
    if (this.#closed.signal.aborted) return;
    this.#queue.push(item);
    this.#weight += this.#weightOf(item);
    const dropped: T[] = [];
    while (this.#weight > this.#options.maxWeight && this.#queue.length > 1) {
      const old = this.#queue.shift() as T;
      this.#weight -= this.#weightOf(old);
      dropped.push(old);
    }
    if (dropped.length > 0) this.#options.onDrop?.(dropped, 'the queue is full');
    void this.#pump();
  }

  /** Starts (or restarts) delivery and cuts a retry wait short. */
  resume(): void {
    this.#paused = false;
    this.#wake?.abort();
    void this.#pump();
  }

  pause(): void {
    this.#paused = true;
  }

  /** Resolves true once the queue is empty, false when `timeoutMs` passes first. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.#queue.length === 0) return true;
    this.resume();
    const empty = new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) =>
      setTimeout(() => resolve(false), timeoutMs).unref(),
    );
    return Promise.race([empty, late]);
  }

  /** Stops delivery; what is still queued is dropped. */
  close(): void {
    this.#closed.abort();
    this.#wake?.abort();
    this.#queue.length = 0;
    this.#weight = 0;
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    let failures = 0;
    try {
      while (this.#queue.length > 0 && !this.#paused && !this.#closed.signal.aborted) {
        const batch = this.#queue.slice(0, this.#options.maxBatch);
        const reply = await this.#options.send(batch, this.#closed.signal);
        if (reply.ok || !isRetryable(reply)) {
          this.#remove(batch);
          if (!reply.ok) this.#options.onDrop?.(batch, reply.message);
          else this.#refusedIn(reply.value, batch);
          failures = 0;
          continue;
        }
        if (isAuthFailure(reply)) this.#options.onAuthFailure?.();
        failures += 1;
        this.#wake = new AbortController();
        await sleep(
          backoffMs(failures, this.#options.backoff ?? { initialMs: 200, maxMs: 5000 }),
          AbortSignal.any([this.#wake.signal, this.#closed.signal]),
        );
        this.#wake = null;
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#queue.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /**
   * A delivered batch whose reply refuses some of its items (`refused: [{index, message}]`, as
   * `POST /agents/{id}/events` answers for events outside the node's scope): those were not
   * applied and never will be, so they are dropped (and said so), not sent again.
   */
  #refusedIn(value: unknown, batch: readonly T[]): void {
    const refused = (value as { refused?: unknown } | null)?.refused;
    if (!Array.isArray(refused)) return;
    for (const r of refused as { index?: unknown; message?: unknown }[]) {
      const item = typeof r.index === 'number' ? batch[r.index] : undefined;
      if (item === undefined) continue;
      this.#options.onDrop?.(
        [item],
        `refused: ${typeof r.message === 'string' ? r.message : 'no reason given'}`,
      );
    }
  }

  #remove(batch: readonly T[]): void {
    // The batch is the head of the queue unless items were dropped for room meanwhile.
    for (const item of batch) {
      const at = this.#queue.indexOf(item);
      if (at < 0) continue;
      this.#queue.splice(at, 1);
      this.#weight -= this.#weightOf(item);
    }
  }

  #weightOf(item: T): number {
    return this.#options.weight?.(item) ?? 1;
  }
}
