import { endianness } from 'node:os';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { CubeError } from '../core/index.ts';
import { writeFileAtomic, type WrittenContent } from './atomic-file.ts';
import type { DurableStore } from './l3-store.ts';
import {
  planSafetensors,
  type SafetensorsHeader,
  type SafetensorsPlan,
  type TensorMap,
} from './safetensors-header.ts';
import { storageError } from './storage-error.ts';
import { createXxh3Hasher } from './xxh3.ts';

export interface WriteSafetensorsOptions {
  /** `__metadata__`: string values only. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A written file: its header, size and XXH3-64 (computed while writing, no second read). */
export interface WrittenSafetensors extends WrittenContent {
  readonly header: SafetensorsHeader;
}

/** Slices of large tensors handed to the writer at once: bounded memory per write call. */
const sliceBytes = 64 * 1024 * 1024;

function checkHostEndianness(): void {
  // Typed arrays are in host order and the format is little-endian; every host Cube
  // targets is, so a big-endian one is refused rather than silently byte-swapped.
  if (endianness() !== 'LE')
    throw new CubeError('INFEASIBLE', 'writing safetensors needs a little-endian host', {});
}

/**
 * The bytes of a planned file, in order, as views over the caller's buffers (no copy, no
 * whole-file buffer): the prefix, then each tensor in data order (packed, no padding).
 */
export async function* safetensorsChunks(
  plan: SafetensorsPlan,
  options: { readonly signal?: AbortSignal } = {},
): AsyncGenerator<Uint8Array> {
  checkHostEndianness();
  yield plan.prefix;
  for (const { entry, input } of plan.inputs) {
    const expected = entry.end - entry.begin;
    if (ArrayBuffer.isView(input.data)) {
      const view = input.data;
      const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      for (let at = 0; at < bytes.byteLength; at += sliceBytes) {
        options.signal?.throwIfAborted();
        yield bytes.subarray(at, Math.min(bytes.byteLength, at + sliceBytes));
      }
    } else {
      let seen = 0;
      for await (const chunk of input.data) {
        options.signal?.throwIfAborted();
        seen += chunk.byteLength;
        if (seen > expected) break;
        yield chunk;
      }
      if (seen !== expected)
        throw new CubeError(
          'INVALID_VALUE',
          `tensor "${entry.name}": its stream gave ${seen > expected ? 'more than' : 'only'} ${seen} bytes, expected ${expected}`,
          { where: { path: entry.name } },
        );
    }
  }
}

/**
 * Writes a safetensors file atomically (temp, fsync, rename, fsync dir), streaming tensor by
 * tensor, and returns its size and XXH3-64 for the shard record.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: TensorMap,
  options: WriteSafetensorsOptions = {},
): Promise<WrittenSafetensors> {
  const plan = planSafetensors(tensors, options);
  const written = await writeFileAtomic(
    path,
    { kind: 'stream', stream: safetensorsChunks(plan, options) },
    {
      expected: { bytes: plan.header.fileBytes },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  );
  return { ...written, header: plan.header };
}

/** Writes a safetensors object into a store (atomically, as every put is). */
export async function putSafetensors(
  store: DurableStore,
  key: string,
  tensors: TensorMap,
  options: WriteSafetensorsOptions = {},
): Promise<WrittenSafetensors> {
  const plan = planSafetensors(tensors, options);
  const written = await store.put(
    key,
    { kind: 'stream', stream: safetensorsChunks(plan, options) },
    {
      expected: { bytes: plan.header.fileBytes },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  );
  return { ...written, header: plan.header };
}

/**
 * Writes a safetensors file in place (an L1 slot: pre-allocated and reused, so it is not
 * replaced by rename): writes from offset 0, truncates to the new size, fsyncs. The slot is
 * torn while this runs; the caller holds the slot's lease so nobody reads it meanwhile.
 */
export async function writeSafetensorsInPlace(
  path: string,
  tensors: TensorMap,
  options: WriteSafetensorsOptions = {},
): Promise<WrittenSafetensors> {
  const plan = planSafetensors(tensors, options);
  let handle: FileHandle;
  try {
    // O_RDWR | O_CREAT without O_TRUNC: keep the slot's pages instead of freeing them.
    handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  } catch (cause) {
    throw storageError('write', path, cause);
  }
  const hasher = createXxh3Hasher();
  try {
    let position = 0;
    for await (const chunk of safetensorsChunks(plan, options)) {
      hasher.update(chunk);
      let at = 0;
      while (at < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at, position);
        at += bytesWritten;
        position += bytesWritten;
      }
    }
    await handle.truncate(position);
    await handle.sync();
  } catch (cause) {
    if (cause instanceof CubeError) throw cause;
    throw storageError('write', path, cause);
  } finally {
    await handle.close();
  }
  return { bytes: hasher.bytes, xxh3: hasher.hex(), header: plan.header };
}
