import type { OutputStream } from '../backends/index.ts';
import type { LogChunk } from './protocol.ts';

interface Buffered {
  readonly chunk: Omit<LogChunk, 'text'>;
  text: string;
  timer: NodeJS.Timeout | null;
}

/**
 * Groups a rank's output into chunks for `POST /agents/{id}/logs`: a chunk goes out when it
 * reaches `chunkChars` or `flushMs` after its first character, whichever comes first.
 */
export class LogForwarder {
  readonly #send: (chunk: LogChunk) => void;
  readonly #chunkChars: number;
  readonly #flushMs: number;
  readonly #buffers = new Map<string, Buffered>();

  constructor(
    send: (chunk: LogChunk) => void,
    options: { readonly chunkChars?: number; readonly flushMs?: number } = {},
  ) {
    this.#send = send;
    this.#chunkChars = options.chunkChars ?? 64 * 1024;
    this.#flushMs = options.flushMs ?? 250;
  }

  append(
    rank: { readonly jobId: string; readonly attempt: number; readonly rank: number },
    stream: OutputStream,
    text: string,
  ): void {
    const key = `${rank.jobId}/${rank.attempt}/${rank.rank}/${stream}`;
    let buffer = this.#buffers.get(key);
    if (buffer === undefined) {
      buffer = {
        chunk: { jobId: rank.jobId, attempt: rank.attempt, rank: rank.rank, stream },
        text: '',
        timer: null,
      };
      this.#buffers.set(key, buffer);
    }
    buffer.text += text;
    while (buffer.text.length >= this.#chunkChars) {
      this.#send({ ...buffer.chunk, text: buffer.text.slice(0, this.#chunkChars) });
      buffer.text = buffer.text.slice(this.#chunkChars);
    }
    if (buffer.text === '') this.#clear(key, buffer);
    else if (buffer.timer === null) {
      const b = buffer;
      b.timer = setTimeout(() => this.#flushKey(key, b), this.#flushMs);
    }
  }

  /** Sends what is buffered for this rank (both streams) now: before its exit is reported. */
  flushRank(rank: {
    readonly jobId: string;
    readonly attempt: number;
    readonly rank: number;
  }): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const key = `${rank.jobId}/${rank.attempt}/${rank.rank}/${stream}`;
      const buffer = this.#buffers.get(key);
      if (buffer !== undefined) this.#flushKey(key, buffer);
    }
  }

  /** Sends everything buffered. */
  flushAll(): void {
    for (const [key, buffer] of [...this.#buffers]) this.#flushKey(key, buffer);
  }

  #flushKey(key: string, buffer: Buffered): void {
    if (buffer.text !== '') this.#send({ ...buffer.chunk, text: buffer.text });
    buffer.text = '';
    this.#clear(key, buffer);
  }

  #clear(key: string, buffer: Buffered): void {
    if (buffer.timer !== null) clearTimeout(buffer.timer);
    buffer.timer = null;
    this.#buffers.delete(key);
  }
}
