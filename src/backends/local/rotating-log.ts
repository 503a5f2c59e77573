import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RankLogSpec } from '../execution-backend.ts';

/**
 * An append-only log file rotated by size: before a write would take the current file past
 * `maxBytes`, it becomes `<path>.1` (older ones shift to `.2` ... `.keepFiles`, the oldest is
 * dropped). Writes are queued and applied in order; a failing disk loses log lines, never the
 * rank (the first error is kept in `error`).
 */
export class RotatingLog {
  readonly #spec: RankLogSpec;
  #handle: FileHandle | null = null;
  #bytes = 0;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;
  #error: Error | null = null;

  private constructor(spec: RankLogSpec) {
    this.#spec = spec;
  }

  /** Opens (appending to) `spec.path`, creating its directory. */
  static async open(spec: RankLogSpec): Promise<RotatingLog> {
    const log = new RotatingLog(spec);
    await mkdir(dirname(spec.path), { recursive: true });
    log.#handle = await open(spec.path, 'a');
    log.#bytes = (await stat(spec.path)).size;
    return log;
  }

  /** The first write error, if any. */
  get error(): Error | null {
    return this.#error;
  }

  /** Queues `text` for appending. */
  write(text: string | Uint8Array): void {
    if (this.#closed) return;
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
    if (bytes.length === 0) return;
    this.#chain = this.#chain
      .then(() => this.#append(bytes))
      .catch((error: unknown) => this.#fail(error));
  }

  /** Resolves when every queued write is on disk (in the file system) and the file is closed. */
  async close(): Promise<void> {
    if (this.#closed) return this.#chain;
    this.#closed = true;
    this.#chain = this.#chain
      .then(async () => {
        await this.#handle?.close();
        this.#handle = null;
      })
      .catch((error: unknown) => this.#fail(error));
    return this.#chain;
  }

  async #append(bytes: Buffer): Promise<void> {
    const max = Math.max(1, this.#spec.maxBytes);
    let rest = bytes;
    while (rest.length > 0) {
      if (this.#bytes > 0 && this.#bytes + Math.min(rest.length, max) > max) await this.#rotate();
      const piece = rest.subarray(0, max - this.#bytes);
      const handle = this.#handle;
      if (handle === null) return;
      await handle.write(piece);
      this.#bytes += piece.length;
      rest = rest.subarray(piece.length);
    }
  }

  async #rotate(): Promise<void> {
    const { path, keepFiles } = this.#spec;
    await this.#handle?.close();
    this.#handle = null;
    if (keepFiles <= 0) await rm(path, { force: true });
    else {
      for (let i = keepFiles - 1; i >= 1; i -= 1)
        await renameIfExists(`${path}.${i}`, `${path}.${i + 1}`);
      await rename(path, `${path}.1`);
    }
    this.#handle = await open(path, 'a');
    this.#bytes = 0;
  }

  #fail(error: unknown): void {
    this.#error ??= error instanceof Error ? error : new Error(String(error));
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
