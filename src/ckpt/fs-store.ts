import {
  access,
  mkdir,
  open,
  readdir,
  rm,
  stat,
  statfs,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CubeError } from '../core/index.ts';
import {
  isHiddenName,
  writeFileAtomic,
  type ByteSource,
  type WrittenContent,
} from './atomic-file.ts';
import {
  checkKey,
  checkPrefix,
  type DurableStore,
  type GetOptions,
  type ListResult,
  type ObjectInfo,
  type PutOptions,
} from './l3-store.ts';
import { storageError } from './storage-error.ts';

const readChunkBytes = 8 * 1024 * 1024;

/** Size of a source when it is known before writing, for the free-space check. */
async function knownBytes(body: ByteSource, options: PutOptions): Promise<number | undefined> {
  if (options.expected?.bytes !== undefined) return options.expected.bytes;
  switch (body.kind) {
    case 'bytes':
      return typeof body.bytes === 'string' ? Buffer.byteLength(body.bytes) : body.bytes.byteLength;
    case 'file':
      try {
        return (await stat(body.path)).size;
      } catch (cause) {
        throw storageError('read', body.path, cause);
      }
    case 'stream':
    case 'pieces':
      return undefined;
    default:
      return body satisfies never;
  }
}

/**
 * A DurableStore in a directory: keys are paths under `root`, puts are temp file + fsync +
 * rename + fsync of the directory, so a crash or a full disk never leaves a torn object and
 * never damages the previous one.
 */
export class FsDurableStore implements DurableStore {
  readonly kind = 'fs' as const;
  readonly #root: string;

  /** `root` is the level root directory; it is created on the first put. */
  constructor(root: string) {
    this.#root = resolve(root);
  }

  /** The level root directory. */
  get root(): string {
    return this.#root;
  }

  locate(key: string): string {
    return key === '' ? this.#root : join(this.#root, ...key.split('/').filter((p) => p !== ''));
  }

  /** The filesystem path of a key (what `locate` returns, after checking the key). */
  pathOf(key: string): string {
    return this.locate(checkKey(key));
  }

  async put(key: string, body: ByteSource, options: PutOptions = {}): Promise<WrittenContent> {
    const path = this.pathOf(key);
    const needed = await knownBytes(body, options);
    if (needed !== undefined) await this.#ensureFree(needed, path);
    try {
      // 0700: job and step directories are private to the daemon's user (umask may narrow it).
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    } catch (cause) {
      // mkdir -p reports a file standing where a directory should be as EEXIST.
      const code = (cause as NodeJS.ErrnoException).code;
      throw storageError(
        'create the directory for',
        path,
        code === 'EEXIST'
          ? Object.assign(new Error('not a directory', { cause }), { code: 'ENOTDIR' })
          : cause,
      );
    }
    return writeFileAtomic(path, body, {
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.expected === undefined ? {} : { expected: options.expected }),
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const path = this.pathOf(key);
    // A missing or unreadable file fails here; the file is opened only once iteration starts,
    // so a reader that is dropped unread (the connection it was for failed) holds no handle.
    try {
      await access(path, constants.R_OK);
    } catch (cause) {
      throw storageError('read', path, cause);
    }
    return readChunks(path, options);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.pathOf(key);
    try {
      const s = await stat(path);
      if (!s.isFile()) return null;
      return { key, bytes: s.size, modifiedAt: s.mtime };
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw storageError('stat', path, cause);
    }
  }

  async list(prefix: string, options: { readonly signal?: AbortSignal } = {}): Promise<ListResult> {
    const dir = this.locate(checkPrefix(prefix));
    options.signal?.throwIfAborted();
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { objects: [], prefixes: [] };
      throw storageError('list', dir, cause);
    }
    const objects: ObjectInfo[] = [];
    const prefixes: string[] = [];
    const visible = entries.filter((e) => !isHiddenName(e.name));
    await Promise.all(
      visible.map(async (entry) => {
        const key = `${prefix}${entry.name}`;
        if (entry.isDirectory()) prefixes.push(`${key}/`);
        else if (entry.isFile()) {
          // Deleted between readdir and stat (GC): leave it out.
          const info = await this.head(key);
          if (info !== null) objects.push(info);
        }
      }),
    );
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    prefixes.sort();
    return { objects, prefixes };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storageError('delete', path, cause);
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (prefix === '')
      throw new CubeError('INVALID_VALUE', 'refusing to delete the whole store', {
        where: { file: this.#root },
      });
    const dir = this.locate(checkPrefix(prefix));
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (cause) {
      throw storageError('delete', dir, cause);
    }
  }

  async freeBytes(): Promise<number | null> {
    // The root may not exist yet: ask the nearest existing ancestor's filesystem.
    let dir = this.#root;
    for (;;) {
      try {
        const s = await statfs(dir);
        return s.bavail * s.bsize;
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        const parent = dirname(dir);
        if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== dir) dir = parent;
        else throw storageError('check free space of', dir, cause);
      }
    }
  }

  async #ensureFree(bytes: number, path: string): Promise<void> {
    const free = await this.freeBytes();
    if (free !== null && free < bytes) {
      const cause = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      throw storageError('write', path, cause, {
        hint: `${bytes} bytes are needed and ${free} are free under ${this.#root}; free space or lower the retention`,
      });
    }
  }
}

async function* readChunks(path: string, options: GetOptions): AsyncGenerator<Uint8Array> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw storageError('read', path, cause);
  }
  try {
    let position = options.range?.start ?? 0;
    const end = options.range?.end ?? Number.POSITIVE_INFINITY;
    // A fresh large buffer costs page faults on every chunk; reuse two in turn when allowed
    // (the caller's own, when it keeps a pair across reads).
    const shared =
      options.transient === true
        ? (options.buffers ??
          [0, 1].map(() => Buffer.allocUnsafe(Math.min(readChunkBytes, end - position))))
        : undefined;
    for (let turn = 0; position < end; turn ^= 1) {
      options.signal?.throwIfAborted();
      const buffer = shared?.[turn] ?? Buffer.allocUnsafe(Math.min(readChunkBytes, end - position));
      const want = Math.min(buffer.byteLength, end - position);
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, want, position));
      } catch (cause) {
        throw storageError('read', path, cause);
      }
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

/** A level root given as a path or as a store. */
export type LevelRoot = string | DurableStore;

/** The store of a level root: a path becomes an FsDurableStore. */
export function asStore(root: LevelRoot): DurableStore {
  return typeof root === 'string' ? new FsDurableStore(root) : root;
}
