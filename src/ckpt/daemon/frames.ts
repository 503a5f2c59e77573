import type { Socket } from 'node:net';
import { CubeError } from '../../core/index.ts';

/**
 * The daemon-to-daemon wire format: a 4-byte big-endian header length, a JSON header, then
 * `header.bytes` raw payload bytes when the header carries a payload. Payloads stream in both
 * directions (a 4 GiB shard is never held in memory), and reading pulls from the socket only as
 * fast as the consumer writes, so TCP flow control is the back-pressure.
 */
export interface FrameHeader {
  readonly op: string;
  /** Payload bytes that follow the header; absent or 0 for none. */
  readonly bytes?: number;
  readonly [key: string]: unknown;
}

const maxHeaderBytes = 1 << 20;

const emptyBuffer = Buffer.alloc(0);

/** Received bytes a FrameReader holds before it pauses the socket, and resumes below. */
const pauseAboveBytes = 16 * 1024 * 1024;
const resumeBelowBytes = 4 * 1024 * 1024;

/**
 * Reads frames from a socket, one at a time. Whatever part of a payload its consumer left
 * unread (say, a write that failed half way) is skipped by the next `next()`, so one failed
 * transfer never desynchronizes the connection.
 *
 * The socket flows ('data' events) into a queue of up to `pauseAboveBytes`, paused above that:
 * a consumer that is behind takes queued pieces without waiting for the event loop, and the
 * socket is not stopped and restarted for every 64 KiB read (what a paused stream's iterator
 * does with the default 16 KiB high-water mark; several times slower on a fast link). Pieces
 * are the socket's own buffers, never reused by it.
 */
export class FrameReader {
  readonly #socket: Socket;
  readonly #queue: Buffer[] = [];
  /** Index of the first queued piece (the queue is compacted now and then, not shifted). */
  #head = 0;
  #queuedBytes = 0;
  #ended = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  #buffered: Buffer = emptyBuffer;
  /** Payload bytes of the current frame not yet read from the socket. */
  #left = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
    const wake = (): void => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    socket.on('data', (piece: Buffer) => {
      this.#queue.push(piece);
      this.#queuedBytes += piece.length;
      if (this.#queuedBytes > pauseAboveBytes) socket.pause();
      wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      wake();
    });
    socket.on('close', () => {
      this.#ended = true;
      wake();
    });
    socket.on('error', (error: Error) => {
      this.#failure = error;
      wake();
    });
  }

  /** The next piece the socket delivered; null once it ended and everything was taken. */
  async #nextChunk(): Promise<Buffer | null> {
    while (this.#head === this.#queue.length) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return this.#shiftQueued();
  }

  /** Takes the oldest queued piece (the queue must not be empty). */
  #shiftQueued(): Buffer {
    const piece = this.#queue[this.#head] as Buffer;
    this.#queue[this.#head] = emptyBuffer;
    this.#head += 1;
    if (this.#head === this.#queue.length || this.#head >= 1024) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    this.#queuedBytes -= piece.length;
    if (this.#queuedBytes < resumeBelowBytes && this.#socket.isPaused()) this.#socket.resume();
    return piece;
  }

  /**
   * The next frame, or null when the peer closed the connection cleanly between frames. Its
   * payload is read either piece by piece (`payload`) or in runs (`runs`: every piece already
   * received, at least one, for one await), never both.
   */
  async next(): Promise<{
    header: FrameHeader;
    payload: AsyncIterable<Buffer> | null;
    runs: AsyncIterable<Buffer[]> | null;
  } | null> {
    await this.#skipPayload();
    const lengthBytes = await this.#take(4, true);
    if (lengthBytes === null) return null;
    const headerLength = lengthBytes.readUInt32BE(0);
    if (headerLength === 0 || headerLength > maxHeaderBytes)
      throw new CubeError('INVALID_VALUE', `bad frame header length ${headerLength}`);
    const headerBytes = await this.#take(headerLength, false);
    if (headerBytes === null) throw new CubeError('FILE_UNREADABLE', 'connection closed mid-frame');
    // A peer's header is untrusted: bad JSON or a non-object is a CubeError, never a crash.
    let header: FrameHeader;
    try {
      header = JSON.parse(headerBytes.toString('utf8')) as FrameHeader;
    } catch {
      throw new CubeError('INVALID_VALUE', 'frame header is not valid JSON');
    }
    if (typeof header !== 'object' || header === null || typeof header.op !== 'string')
      throw new CubeError('INVALID_VALUE', 'frame header without an op');
    const bytes = header.bytes ?? 0;
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new CubeError('INVALID_VALUE', `frame header with a bad byte count ${String(bytes)}`);
    this.#left = bytes;
    return {
      header,
      payload: bytes > 0 ? this.#payload() : null,
      runs: bytes > 0 ? this.#runs() : null,
    };
  }

  async *#payload(): AsyncGenerator<Buffer> {
    while (this.#left > 0) yield await this.#nextPiece();
  }

  async *#runs(): AsyncGenerator<Buffer[]> {
    while (this.#left > 0) {
      const run = [await this.#nextPiece()];
      // Whatever has arrived meanwhile joins the run without another await.
      while (this.#left > 0 && (this.#buffered.length > 0 || this.#head < this.#queue.length)) {
        if (this.#buffered.length === 0) this.#buffered = this.#shiftQueued();
        run.push(this.#takeBuffered());
      }
      yield run;
    }
  }

  /** Up to the rest of the payload from the buffered piece. */
  #takeBuffered(): Buffer {
    const take = Math.min(this.#left, this.#buffered.length);
    const piece = this.#buffered.subarray(0, take);
    this.#buffered = this.#buffered.subarray(take);
    this.#left -= take;
    return piece;
  }

  async #nextPiece(): Promise<Buffer> {
    if (this.#buffered.length === 0) {
      const piece = await this.#nextChunk();
      if (piece === null) throw new CubeError('FILE_UNREADABLE', 'connection closed mid-payload');
      this.#buffered = piece;
    }
    return this.#takeBuffered();
  }

  async #skipPayload(): Promise<void> {
    while (this.#left > 0) await this.#nextPiece();
  }

  /** Exactly `n` bytes; null when the stream ends before the first byte and `eofOk`. */
  async #take(n: number, eofOk: boolean): Promise<Buffer | null> {
    while (this.#buffered.length < n) {
      const piece = await this.#nextChunk();
      if (piece === null) {
        if (eofOk && this.#buffered.length === 0) return null;
        throw new CubeError('FILE_UNREADABLE', 'connection closed mid-frame');
      }
      this.#buffered = this.#buffered.length === 0 ? piece : Buffer.concat([this.#buffered, piece]);
    }
    const out = this.#buffered.subarray(0, n);
    this.#buffered = this.#buffered.subarray(n);
    return out;
  }
}

/** Writes `data` and waits for the socket to drain when its buffer is full. */
export async function writeWithBackpressure(socket: Socket, data: Uint8Array): Promise<void> {
  if (socket.destroyed) throw new CubeError('FILE_UNREADABLE', 'connection closed while sending');
  if (socket.write(data)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.off('drain', onDrain);
      reject(new CubeError('FILE_UNREADABLE', 'connection closed while sending'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/**
 * Yields what `source` yields, asking for the next item as soon as one is handed out, so that
 * reading the next chunk overlaps sending this one. Only for sources whose chunks stay valid
 * after the next is asked for (fresh buffers, or two buffers in turn as `transient` reads give).
 */
async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const item = await next;
      if (item.done === true) return;
      next = it.next();
      // Awaited on the next turn; a read failing meanwhile must not count as unhandled.
      next.catch(() => undefined);
      yield item.value;
    }
  } finally {
    await Promise.allSettled([next]);
    await it.return?.();
  }
}

/** Writes `data` and resolves once the socket has handed all of it to the kernel. */
function writeFlushed(socket: Socket, data: Uint8Array): Promise<void> {
  if (socket.destroyed)
    return Promise.reject(new CubeError('FILE_UNREADABLE', 'connection closed while sending'));
  return new Promise<void>((resolve, reject) => {
    const onClose = (): void =>
      reject(new CubeError('FILE_UNREADABLE', 'connection closed while sending'));
    socket.once('close', onClose);
    socket.write(data, (error) => {
      socket.off('close', onClose);
      if (error === null || error === undefined) resolve();
      else reject(new CubeError('FILE_UNREADABLE', `sending failed: ${error.message}`));
    });
  });
}

/**
 * Sends a header and, when given, exactly `header.bytes` payload bytes from `payload`. Each
 * chunk is flushed to the kernel before the chunk after next is asked for, while the next one
 * is read ahead: a payload whose source refills two buffers in turn (`transient` reads) is safe.
 */
export async function sendFrame(
  socket: Socket,
  header: FrameHeader,
  payload?: AsyncIterable<Uint8Array>,
  options: { pace?: (bytes: number) => Promise<void>; signal?: AbortSignal } = {},
): Promise<void> {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length, 0);
  await writeWithBackpressure(socket, Buffer.concat([prefix, json]));
  if (payload === undefined) return;
  await sendPayload(socket, header.bytes ?? 0, payload, options);
}

/**
 * Sends exactly `bytes` bytes from `payload`, paced, each chunk flushed to the kernel before
 * the chunk after next is asked for while the next one is read ahead.
 */
export async function sendPayload(
  socket: Socket,
  bytes: number,
  payload: AsyncIterable<Uint8Array>,
  options: { pace?: (bytes: number) => Promise<void>; signal?: AbortSignal } = {},
): Promise<void> {
  let sent = 0;
  for await (const chunk of readAhead(payload)) {
    options.signal?.throwIfAborted();
    if (options.pace !== undefined) await options.pace(chunk.byteLength);
    options.signal?.throwIfAborted();
    await writeFlushed(socket, chunk);
    sent += chunk.byteLength;
  }
  if (sent !== bytes)
    throw new CubeError('INTERNAL', `sent ${sent} payload bytes, the header said ${bytes}`);
}
