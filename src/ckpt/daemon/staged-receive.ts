import { CubeError } from '../../core/index.ts';

/** One receive's memory: the chunks the socket reads into, and a spare read buffer. */
export interface StagingBuffers {
  /** Where a read lands while every chunk is taken (copied into a chunk afterwards). */
  readonly spare: Buffer;
  /** Chunks handed to the consumer in turn; at least three (it may hold two). */
  readonly chunks: readonly Buffer[];
}

/** Socket reads of up to 1 MiB into chunks of 8 MiB, the size the file writer takes at once. */
export function allocateStagingBuffers(
  readBytes = 1 << 20,
  chunkBytes = 8 << 20,
  chunks = 3,
): StagingBuffers {
  if (chunks < 3) throw new CubeError('INTERNAL', 'a staged receive needs three chunk buffers');
  if (chunkBytes < readBytes)
    throw new CubeError('INTERNAL', 'staging chunks must hold at least one socket read');
  return {
    spare: Buffer.allocUnsafe(readBytes),
    chunks: Array.from({ length: chunks }, () => Buffer.allocUnsafe(chunkBytes)),
  };
}

/**
 * Receives exactly `bytes` bytes from a socket that reads into buffers it is given (Node's
 * `onread` option, open to connecting sockets only): every read lands in place in one of a few
 * large chunk buffers used in turn, with no copy and no allocation. A socket without `onread`
 * gets a fresh 64 KiB buffer for every read; at a gigabyte per second that is 16,000 reads and
 * allocations a second, which measured at about half the throughput of reads of 1 MiB into one
 * buffer on loopback (bench/ckpt/README.md).
 *
 * `chunks()` yields the payload as chunks that stay valid until the one after next is asked
 * for (a `stream` ByteSource). The socket is paused while every chunk buffer is taken, so a
 * slow consumer holds the sender back through TCP flow control.
 */
export class StagedReceive {
  readonly #bytes: number;
  readonly #buffers: StagingBuffers;
  readonly #readBytes: number;
  readonly #free: Buffer[];
  /** Filled chunks: the buffer and the part of it that holds payload. */
  readonly #ready: { whole: Buffer; view: Buffer }[] = [];
  /** The chunks handed out, oldest first, not yet given back (at most two). */
  readonly #lent: { whole: Buffer; view: Buffer }[] = [];
  #filling: Buffer | null = null;
  #filled = 0;
  /** The buffer the next read lands in: a slice of `#filling` at `#filled`, or the spare. */
  #target: Buffer;
  #received = 0;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  #paused = false;
  #resume: (() => void) | null = null;

  constructor(bytes: number, buffers: StagingBuffers) {
    this.#bytes = bytes;
    this.#buffers = buffers;
    this.#readBytes = buffers.spare.length;
    this.#free = [...buffers.chunks];
    this.#target = buffers.spare;
  }

  /** The `onread` option to connect the socket with. */
  get onread(): { buffer: () => Buffer; callback: (n: number, buffer: Buffer) => boolean } {
    return {
      // Node asks for the next read's buffer once at the start and after every read.
      buffer: () => this.#nextTarget(),
      callback: (n, buffer) => this.#onRead(n, buffer),
    };
  }

  /** How the socket is resumed once a chunk buffer frees up (set once it exists). */
  set resumeWith(resume: () => void) {
    this.#resume = resume;
  }

  /** Ends the receive with `error` (the socket failed or closed early). */
  fail(error: Error): void {
    if (this.#received === this.#bytes && this.#filling === null) return;
    this.#failure ??= error;
    this.#notify();
  }

  /** Bytes received so far. */
  get received(): number {
    return this.#received;
  }

  #nextTarget(): Buffer {
    if (this.#filling === null && this.#received < this.#bytes) {
      const free = this.#free.pop();
      if (free !== undefined) {
        this.#filling = free;
        this.#filled = 0;
      }
    }
    this.#target =
      this.#filling === null
        ? this.#buffers.spare
        : this.#filling.subarray(
            this.#filled,
            Math.min(this.#filling.length, this.#filled + this.#readBytes),
          );
    return this.#target;
  }

  #onRead(n: number, read: Buffer): boolean {
    if (this.#failure !== null) return false;
    if (this.#received + n > this.#bytes) {
      this.#failure = new CubeError(
        'INVALID_VALUE',
        `the sender sent more than the announced ${this.#bytes} bytes`,
      );
      this.#notify();
      return false;
    }
    // A read lands in place unless the spare was all there was to give.
    if (read !== this.#buffers.spare && read === this.#target) this.#advance(n);
    else this.#copyIn(read, n);
    this.#notify();
    if (this.#filling !== null || this.#free.length > 0 || this.#received === this.#bytes)
      return true;
    // Every chunk is taken: the next read would land in the spare, and one after it nowhere.
    this.#paused = true;
    return false;
  }

  /** A read that landed in the spare (every chunk was taken): copied into chunks. */
  #copyIn(read: Buffer, n: number): void {
    let at = 0;
    while (at < n) {
      if (this.#filling === null) {
        // Reading stops while every chunk is taken, so one is free by now; a fresh buffer
        // here is only a guard.
        this.#filling = this.#free.pop() ?? Buffer.allocUnsafe(this.#chunkBytes);
        this.#filled = 0;
      }
      const take = Math.min(n - at, this.#filling.length - this.#filled);
      read.copy(this.#filling, this.#filled, at, at + take);
      this.#advance(take);
      at += take;
    }
  }

  /** Counts `n` bytes written at the end of the chunk being filled; hands it over when done. */
  #advance(n: number): void {
    const filling = this.#filling as Buffer;
    this.#filled += n;
    this.#received += n;
    if (this.#filled === filling.length || this.#received === this.#bytes) this.#handOver();
  }

  get #chunkBytes(): number {
    return (this.#buffers.chunks[0] as Buffer).length;
  }

  #handOver(): void {
    const whole = this.#filling as Buffer;
    this.#ready.push({ whole, view: whole.subarray(0, this.#filled) });
    this.#filling = null;
    this.#filled = 0;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Gives a lent chunk's buffer back and resumes reading if it was waiting for room. */
  #giveBack(): void {
    const chunk = this.#lent.shift();
    if (chunk === undefined) return;
    this.#free.push(chunk.whole);
    if (this.#paused) {
      this.#paused = false;
      this.#resume?.();
    }
  }

  /** The payload, in chunks; each valid until the one after next is asked for. */
  async *chunks(): AsyncGenerator<Buffer> {
    let handedOut = 0;
    for (;;) {
      // Asking for the next chunk means the one before the last is done with.
      if (this.#lent.length >= 2) this.#giveBack();
      while (this.#ready.length === 0) {
        if (this.#failure !== null) throw this.#failure;
        if (handedOut === this.#bytes) return;
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
      const chunk = this.#ready.shift() as { whole: Buffer; view: Buffer };
      this.#lent.push(chunk);
      handedOut += chunk.view.length;
      yield chunk.view;
    }
  }
}
