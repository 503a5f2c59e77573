import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Default cap of one rank log on the server: the current file and one rotated file together. */
export const defaultRankLogMaxBytes = 64 * 1024 * 1024;

/** Default and largest reply of one ranged log read. */
export const maxLogReadBytes = 1024 * 1024;

/** The rank log file of one attempt. */
export function rankLogPath(dataDir: string, jobId: string, attempt: number, rank: number): string {
  return join(dataDir, 'logs', jobId, String(attempt), `rank-${rank}.log`);
}

/** A range of a rank log, in offsets over everything ever written to it. */
export interface LogRange {
  readonly bytes: Buffer;
  /** Where `bytes` start: the asked offset, or the oldest kept byte when that was dropped. */
  readonly offset: number;
  /** The offset to ask next (`offset + bytes.length`). */
  readonly nextOffset: number;
  /** The offset of the oldest byte still kept (earlier ones were rotated out). */
  readonly start: number;
  /** Everything written so far (the offset after the newest byte). */
  readonly size: number;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * The rank logs the agents push to the control plane, capped like the agents' own: a log is
 * `rank-R.log` plus one rotated `rank-R.log.1`, each at most half of `maxBytes`. When an append
 * would take the current file past that, it becomes `.1` (the old `.1` is dropped) and
 * `rank-R.log.base` records the offset, over everything ever written, where the new `.1`
 * starts, so readers keep stable offsets across rotations. Appends to one log are applied in
 * order; reads read only the range asked for.
 */
export class RankLogs {
  readonly #maxBytes: number;
  readonly #chains = new Map<string, Promise<void>>();

  constructor(options: { maxBytes?: number } = {}) {
    this.#maxBytes = Math.max(2, options.maxBytes ?? defaultRankLogMaxBytes);
  }

  /** The largest file before rotation (and so the largest append that is kept whole). */
  get fileBytes(): number {
    return Math.floor(this.#maxBytes / 2);
  }

  /** Appends `text`; when it alone exceeds a file, only its last {@link fileBytes} are kept. */
  append(path: string, text: string): Promise<void> {
    return this.#queue(path, () => this.#append(path, Buffer.from(text, 'utf8')));
  }

  // One queue per log: appends and reads of a log run one at a time, so a read never sees a
  // rotation half done.
  #queue<T>(path: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(path) ?? Promise.resolve();
    const next = previous.then(work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.#chains.set(path, settled);
    void settled.then(() => {
      if (this.#chains.get(path) === settled) this.#chains.delete(path);
    });
    return next;
  }

  async #append(path: string, data: Buffer): Promise<void> {
    if (data.length === 0) return;
    const limit = this.fileBytes;
    let bytes = data;
    let skipped = 0;
    if (bytes.length > limit) {
      skipped = bytes.length - limit;
      bytes = bytes.subarray(skipped);
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const current = await sizeOf(path);
    if (current + bytes.length > limit || skipped > 0) {
      const base = await readBase(path);
      const rotated = await sizeOf(`${path}.1`);
      // The old `.1` is dropped; the current file becomes `.1`. Bytes of this append that do
      // not fit a file are dropped too (counted, so offsets stay those of everything written).
      const newBase = skipped > 0 ? base + rotated + current + skipped : base + rotated;
      await writeFile(`${path}.base`, `${newBase}\n`, { mode: 0o600 });
      if (skipped > 0) {
        await rm(`${path}.1`, { force: true });
        await rm(path, { force: true });
      } else if (current > 0) await rename(path, `${path}.1`);
      else await rm(`${path}.1`, { force: true });
    }
    const handle = await open(path, 'a', 0o600);
    try {
      await handle.write(bytes);
    } finally {
      await handle.close();
    }
  }

  /**
   * Reads at most `limit` bytes from `offset` (over everything ever written), reading only that
   * range from disk. A range that ends inside a UTF-8 character stops before it.
   */
  read(path: string, options: { offset: number; limit: number }): Promise<LogRange> {
    return this.#queue(path, () => this.#read(path, options));
  }

  async #read(path: string, options: { offset: number; limit: number }): Promise<LogRange> {
    const base = await readBase(path);
    const rotatedBytes = await sizeOf(`${path}.1`);
    const currentBytes = await sizeOf(path);
    const size = base + rotatedBytes + currentBytes;
    const offset = Math.min(Math.max(options.offset, base), size);
    const length = Math.max(0, Math.min(options.limit, size - offset));
    const out = Buffer.alloc(length);
    let filled = 0;
    // Part in the rotated file, then part in the current one.
    const inRotated = offset - base;
    if (inRotated < rotatedBytes && length > 0) {
      const n = Math.min(length, rotatedBytes - inRotated);
      filled += await readAt(`${path}.1`, out, 0, n, inRotated);
    }
    if (filled < length) {
      const from = Math.max(0, offset + filled - base - rotatedBytes);
      filled += await readAt(path, out, filled, length - filled, from);
    }
    let bytes = out.subarray(0, filled);
    if (offset + bytes.length < size) bytes = bytes.subarray(0, wholeUtf8Length(bytes));
    return { bytes, offset, nextOffset: offset + bytes.length, start: base, size };
  }
}

async function readBase(path: string): Promise<number> {
  try {
    const n = Number((await readFile(`${path}.base`, 'utf8')).trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

async function readAt(
  path: string,
  into: Buffer,
  at: number,
  length: number,
  position: number,
): Promise<number> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return 0;
  }
  try {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(into, at + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  } finally {
    await handle.close();
  }
}

/** The length of the longest prefix of `bytes` that does not end inside a UTF-8 character. */
export function wholeUtf8Length(bytes: Buffer): number {
  const n = bytes.length;
  // A character is at most 4 bytes: look back at most 3 for the start of the last one.
  for (let back = 1; back <= Math.min(4, n); back += 1) {
    const b = bytes[n - back] ?? 0;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte
    const needed = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return needed > back ? n - back : n;
  }
  return n;
}
