import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CubeError } from '../core/index.ts';
import { storageError } from './storage-error.ts';
import {
  compareContent,
  createXxh3Hasher,
  type ContentCheck,
  describeContentCheck,
  type ExpectedContent,
} from './xxh3.ts';

/** Where the bytes of a write come from. */
export type ByteSource =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array | string }
  | { readonly kind: 'file'; readonly path: string }
  /**
   * A chunk need only stay valid until the one after next is asked for: a producer may refill
   * two buffers in turn, never one.
   */
  | { readonly kind: 'stream'; readonly stream: AsyncIterable<Uint8Array> }
  /**
   * Runs of pieces that stay valid for good (the producer never reuses a buffer, as a socket's
   * reads): gathered by reference into vectored writes, with no copy; a run (every piece that
   * had arrived) costs one await, not one per 64 KiB piece.
   */
  | { readonly kind: 'pieces'; readonly runs: AsyncIterable<readonly Uint8Array[]> };

/** What a completed write produced. */
export interface WrittenContent {
  readonly bytes: number;
  readonly xxh3: string;
}

export interface AtomicWriteOptions {
  readonly signal?: AbortSignal;
  /** When given, a write whose content differs is discarded and fails (nothing replaced). */
  readonly expected?: Partial<ExpectedContent>;
  /** File mode of the new file (default 0o600: checkpoints and records are private to their owner). */
  readonly mode?: number;
}

/** The cause of a write refused because its content differed from what was expected. */
export class ContentMismatch extends Error {
  readonly check: Exclude<ContentCheck, { kind: 'ok' }>;
  constructor(check: Exclude<ContentCheck, { kind: 'ok' }>) {
    super(describeContentCheck(check, 'content'));
    this.name = 'ContentMismatch';
    this.check = check;
  }
}

/** The mismatch behind a refused write, or undefined for any other error. */
export function contentMismatchOf(error: unknown): ContentCheck | undefined {
  return error instanceof CubeError && error.cause instanceof ContentMismatch
    ? error.cause.check
    : undefined;
}

/** Reads of a source file, and the largest slice of a big buffer written at once. */
const chunkBytes = 8 * 1024 * 1024;

/** Bytes written between background flushes of a large file to its device. */
const flushEveryBytes = 64 * 1024 * 1024;

/** Pieces in one vectored write (Linux's IOV_MAX is 1024). */
const maxPiecesPerWrite = 512;

/** The temp name the format prescribes: `.<name>.tmp-<pid>-<random>`, hidden from readers. */
export function tempNameFor(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`,
  );
}

/** True for a name a reader must ignore (temp files, and anything else hidden). */
export function isHiddenName(name: string): boolean {
  return name.startsWith('.');
}

/**
 * Yields the bytes of a source as batches of pieces of about `chunkBytes` in all, each batch to
 * be written at once. A batch stays valid until the consumer asks for the one after next: files
 * and streams are read or copied into two buffers used in turn (or a stream's large chunks
 * passed through), so the consumer may still be writing one batch while the next is filled;
 * `pieces` are gathered by reference.
 */
export async function* sourceChunks(
  source: ByteSource,
  options: { readonly signal?: AbortSignal } = {},
): AsyncGenerator<readonly Uint8Array[]> {
  switch (source.kind) {
    case 'bytes': {
      const bytes =
        typeof source.bytes === 'string' ? Buffer.from(source.bytes, 'utf8') : source.bytes;
      for (let at = 0; at < bytes.byteLength; at += chunkBytes)
        yield [bytes.subarray(at, Math.min(bytes.byteLength, at + chunkBytes))];
      return;
    }
    case 'file': {
      let handle: FileHandle;
      try {
        handle = await open(source.path, 'r');
      } catch (cause) {
        throw storageError('read', source.path, cause);
      }
      // Two buffers, refilled in turn: a fresh large buffer per chunk costs page faults that
      // dominate the copy.
      const buffers = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
      try {
        for (let turn = 0; ; turn ^= 1) {
          const buffer = buffers[turn] as Buffer;
          options.signal?.throwIfAborted();
          let read: number;
          try {
            ({ bytesRead: read } = await handle.read(buffer, 0, chunkBytes, null));
          } catch (cause) {
            throw storageError('read', source.path, cause);
          }
          if (read === 0) return;
          yield [buffer.subarray(0, read)];
        }
      } finally {
        await handle.close();
      }
    }
    case 'pieces': {
      // Socket reads are small (64 KiB): gathered by reference, the file sees one large
      // vectored write per batch instead of one thread-pool round trip per 64 KiB.
      let batch: Uint8Array[] = [];
      let gathered = 0;
      for await (const run of source.runs) {
        options.signal?.throwIfAborted();
        for (const piece of run) {
          if (piece.byteLength === 0) continue;
          batch.push(piece);
          gathered += piece.byteLength;
          if (gathered >= chunkBytes || batch.length >= maxPiecesPerWrite) {
            yield batch;
            batch = [];
            gathered = 0;
          }
        }
      }
      if (batch.length > 0) yield batch;
      return;
    }
    case 'stream': {
      // A producer of large chunks (a store's transient read refilling two buffers in turn) is
      // passed through, one chunk per batch, which keeps its rule: the consumer is done with a
      // chunk before the one after next is asked for. Decided by the first chunk, for the whole
      // stream, since gathering after passing one through would break that rule. Small chunks
      // (64 KiB socket reads) are copied into two large buffers used in turn: the file sees a
      // few large writes instead of one thread-pool round trip per 64 KiB.
      const it = source.stream[Symbol.asyncIterator]();
      let finished = false;
      const pull = async (): Promise<Uint8Array | null> => {
        options.signal?.throwIfAborted();
        const next = await it.next();
        if (next.done === true) finished = true;
        return next.done === true ? null : next.value;
      };
      try {
        let chunk = await pull();
        if (chunk === null) return;
        if (chunk.byteLength >= chunkBytes / 2) {
          for (; chunk !== null; chunk = await pull()) if (chunk.byteLength > 0) yield [chunk];
          return;
        }
        const buffers = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
        let buffer = buffers[0] as Buffer;
        let turn = 0;
        let filled = 0;
        for (; chunk !== null; chunk = await pull()) {
          let at = 0;
          while (at < chunk.byteLength) {
            const n = Math.min(chunkBytes - filled, chunk.byteLength - at);
            buffer.set(chunk.subarray(at, at + n), filled);
            filled += n;
            at += n;
            if (filled === chunkBytes) {
              yield [buffer];
              turn ^= 1;
              buffer = buffers[turn] as Buffer;
              filled = 0;
            }
          }
        }
        if (filled > 0) yield [buffer.subarray(0, filled)];
        return;
      } finally {
        // Stopped early (a failed write, an abort): the producer closes what it holds.
        if (!finished) await it.return?.();
      }
    }
    default:
      source satisfies never;
  }
}

/** Writes all of `pieces`, in order, with vectored writes (a write may be partial). */
export async function writeAll(handle: FileHandle, pieces: readonly Uint8Array[]): Promise<void> {
  let rest = pieces.filter((p) => p.byteLength > 0);
  while (rest.length > 0) {
    const first = rest[0] as Uint8Array;
    const { bytesWritten } =
      rest.length === 1
        ? await handle.write(first, 0, first.byteLength, null)
        : await handle.writev(rest);
    // Drop what was written: whole pieces, then the head of a partly written one.
    let left = bytesWritten;
    let i = 0;
    while (i < rest.length && left >= (rest[i] as Uint8Array).byteLength) {
      left -= (rest[i] as Uint8Array).byteLength;
      i += 1;
    }
    rest = rest.slice(i);
    if (left > 0 && rest.length > 0) rest[0] = (rest[0] as Uint8Array).subarray(left);
  }
}

/**
 * fsyncs a directory so a rename inside it survives a crash. Filesystems that cannot sync a
 * directory (EINVAL) are accepted: there is nothing more to do on them.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'EINVAL') throw storageError('sync', dir, cause);
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `path` atomically: a temp file in the same directory, write, fsync, rename over the
 * final name, fsync the directory. Hashes while writing. On any failure (ENOSPC, EACCES, an
 * abort, content that differs from `expected`) the temp file is removed and the previous file
 * at `path`, if any, is left untouched; the error is a CubeError naming the path.
 */
export async function writeFileAtomic(
  path: string,
  source: ByteSource,
  options: AtomicWriteOptions = {},
): Promise<WrittenContent> {
  options.signal?.throwIfAborted();
  const temp = tempNameFor(path);
  let handle: FileHandle | undefined;
  let renamed = false;
  try {
    try {
      handle = await open(temp, 'wx', options.mode ?? 0o600);
    } catch (cause) {
      throw storageError('write', path, cause);
    }
    const hasher = createXxh3Hasher();
    const file = handle;
    // One write in flight while the next batch is read and hashed (sourceChunks keeps a batch
    // valid until the one after next is asked for).
    let writing: Promise<void> | null = null;
    const settle = async (): Promise<void> => {
      const pending = writing;
      writing = null;
      try {
        await pending;
      } catch (cause) {
        throw storageError('write', path, cause);
      }
    };
    // Written data is flushed to the device in the background every `flushEveryBytes`, so the
    // disk works while the rest arrives and the final fsync finds little left to write (Linux
    // would hold a few GiB dirty before starting on its own).
    let flushing: Promise<void> | null = null;
    let flushed = true;
    let unflushed = 0;
    try {
      for await (const batch of sourceChunks(source, options)) {
        options.signal?.throwIfAborted();
        for (const piece of batch) hasher.update(piece);
        await settle();
        if (unflushed >= flushEveryBytes && flushed) {
          // A failed flush is kept (and none started after it): the write fails below.
          flushed = false;
          flushing = file.datasync().then(() => {
            flushed = true;
          });
          flushing.catch(() => undefined);
          unflushed = 0;
        }
        writing = writeAll(file, batch);
        // Awaited by the next settle(); until then a failure must not count as unhandled.
        writing.catch(() => undefined);
        for (const piece of batch) unflushed += piece.byteLength;
      }
    } finally {
      await Promise.allSettled([writing, flushing]);
    }
    await settle();
    try {
      await flushing;
    } catch (cause) {
      throw storageError('sync', path, cause);
    }
    const expected = options.expected;
    if (expected !== undefined) {
      const check = compareContent(hasher, {
        bytes: expected.bytes ?? hasher.bytes,
        xxh3: expected.xxh3 ?? hasher.hex(),
      });
      if (check.kind !== 'ok')
        throw new CubeError(
          'CORRUPT_DATA',
          `refusing to write ${path}: ${describeContentCheck(check, 'the content')}`,
          {
            where: { file: path },
            hint: 'the source changed or is corrupt; read it again',
            cause: new ContentMismatch(check),
          },
        );
    }
    try {
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, path);
      renamed = true;
    } catch (cause) {
      throw storageError('write', path, cause);
    }
    await fsyncDirectory(dirname(path));
    return { bytes: hasher.bytes, xxh3: hasher.hex() };
  } finally {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (!renamed) await unlink(temp).catch(() => undefined);
  }
}
