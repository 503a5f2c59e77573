/**
 * The seam between the checkpoint engine and where a level's bytes live. It is shaped like an
 * S3 bucket (put / get with a range / head / list with a `/` delimiter / delete) so an
 * S3-compatible store can be added behind it later; today the only implementation is
 * `FsDurableStore` (a directory, temp file + fsync + rename). Every level root — L1 tmpfs, L2
 * replicas, L3 shared filesystem — is read and written through this interface, so scanning,
 * committing, verifying and GC work unchanged on any store.
 */
import { CubeError } from '../core/index.ts';
import type { ByteSource, WrittenContent } from './atomic-file.ts';
import type { ExpectedContent } from './xxh3.ts';

/** An object (a file) in a store. */
export interface ObjectInfo {
  /** `/`-separated key relative to the store's root. */
  readonly key: string;
  readonly bytes: number;
  readonly modifiedAt: Date;
}

/** One level of a listing: objects directly under the prefix, and the next-level prefixes. */
export interface ListResult {
  readonly objects: readonly ObjectInfo[];
  /** Each ends with `/`, e.g. `gpt-small/step-0000000100/`. */
  readonly prefixes: readonly string[];
}

export interface PutOptions {
  readonly signal?: AbortSignal;
  /** When given, content that differs is discarded and the put fails; nothing is replaced. */
  readonly expected?: Partial<ExpectedContent>;
}

export interface GetOptions {
  readonly signal?: AbortSignal;
  /** Bytes `[start, end)` only; `end` defaults to the end of the object. */
  readonly range?: { readonly start: number; readonly end?: number };
  /**
   * The consumer is done with each chunk before it asks for the one after next (hashing, an
   * awaited write, a socket write awaited until flushed), so the store may refill two buffers
   * in turn instead of allocating one per chunk: several times faster on large files, since
   * fresh memory costs page faults. A store may ignore it.
   */
  readonly transient?: boolean;
  /**
   * With `transient`: the two buffers to refill (chunks as long as they are), owned by the
   * caller and reused across its reads, so a read allocates nothing. The caller must not start
   * another read with them while it still uses a chunk of this one.
   */
  readonly buffers?: readonly [Uint8Array, Uint8Array];
}

/** A durable object store holding one level root. */
export interface DurableStore {
  /** `fs` only today; an S3-compatible store would add `s3`. */
  readonly kind: 'fs';
  /** Where a key lives, for messages: a filesystem path (or a URL for a remote store). */
  locate(key: string): string;
  /**
   * Stores an object atomically: readers see the old object or the new one, never a part.
   * Returns the size and XXH3-64 of what was stored. A failure (ENOSPC, EACCES, a content
   * mismatch) throws a CubeError naming the location and leaves any earlier object intact.
   */
  put(key: string, body: ByteSource, options?: PutOptions): Promise<WrittenContent>;
  /**
   * Streams an object. Throws FILE_NOT_FOUND when it does not exist. Iterate it to the end
   * (or break out of the loop) so the underlying file is closed.
   */
  get(key: string, options?: GetOptions): Promise<AsyncIterable<Uint8Array>>;
  /** An object's size and time, or null when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Lists one level under `prefix` (`''` or ending with `/`); hidden names are left out. */
  list(prefix: string, options?: { readonly signal?: AbortSignal }): Promise<ListResult>;
  /** Deletes an object; deleting a missing one is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes everything under `prefix` (ending with `/`), including a writer's leftovers. */
  deletePrefix(prefix: string): Promise<void>;
  /** Bytes a put can still use, or null when the store cannot tell (object stores). */
  freeBytes(): Promise<number | null>;
}

/** Throws INVALID_VALUE unless `key` is a safe relative key (no `..`, no hidden segment). */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (key === '' || parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.')))
    throw new CubeError(
      'INVALID_VALUE',
      `"${key}" is not a store key: expected a relative path without empty, "..", or hidden parts`,
      { where: { field: 'key' } },
    );
  return key;
}

/** Throws INVALID_VALUE unless `prefix` is `''` or a valid key ending with `/`. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  if (!prefix.endsWith('/'))
    throw new CubeError('INVALID_VALUE', `store prefix "${prefix}" must end with "/"`, {
      where: { field: 'prefix' },
    });
  checkKey(prefix.slice(0, -1));
  return prefix;
}

/** Largest object read whole into memory (records and manifests are far smaller). */
const maxTextBytes = 256 * 1024 * 1024;

/** Reads a small object (a record, a manifest) as UTF-8 text, or null when it is missing. */
export async function readText(
  store: DurableStore,
  key: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<string | null> {
  const info = await store.head(key);
  if (info === null) return null;
  if (info.bytes > maxTextBytes)
    throw new CubeError(
      'INVALID_FILE',
      `${store.locate(key)} is ${info.bytes} bytes, too large for a record or manifest`,
      { where: { file: store.locate(key) } },
    );
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of await store.get(key, options)) chunks.push(chunk);
  } catch (error) {
    // Deleted between head and get (GC): the same as missing.
    if (error instanceof CubeError && error.code === 'FILE_NOT_FOUND') return null;
    throw error;
  }
  return Buffer.concat(chunks).toString('utf8');
}
