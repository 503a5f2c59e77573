import { basename, dirname } from 'node:path';
import { CubeError } from '../core/index.ts';
import type { Dtype } from './dtypes.ts';
import { FsDurableStore } from './fs-store.ts';
import type { DurableStore } from './l3-store.ts';
import {
  parseHeaderLength,
  parseSafetensorsHeader,
  type SafetensorsHeader,
  type TensorEntry,
} from './safetensors-header.ts';

interface ReadOptions {
  readonly signal?: AbortSignal;
}

/** Reads bytes `[start, end)` of an object. */
async function readRange(
  store: DurableStore,
  key: string,
  start: number,
  end: number,
  options: ReadOptions,
): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const stream = await store.get(key, {
    range: { start, end },
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Reads and validates the header of a safetensors object (two small reads). */
export async function readSafetensorsHeaderFrom(
  store: DurableStore,
  key: string,
  options: ReadOptions = {},
): Promise<SafetensorsHeader> {
  const where = store.locate(key);
  const info = await store.head(key);
  if (info === null)
    throw new CubeError('FILE_NOT_FOUND', `file not found: ${where}`, { where: { file: where } });
  const first8 = await readRange(store, key, 0, 8, options);
  const n = parseHeaderLength(first8, info.bytes, where);
  const json = await readRange(store, key, 8, 8 + n, options);
  return parseSafetensorsHeader(json, info.bytes, where);
}

function storeOfPath(path: string): { store: DurableStore; key: string } {
  return { store: new FsDurableStore(dirname(path)), key: basename(path) };
}

/** Reads and validates the header of a safetensors file. */
export async function readSafetensorsHeader(
  path: string,
  options: ReadOptions = {},
): Promise<SafetensorsHeader> {
  const { store, key } = storeOfPath(path);
  return readSafetensorsHeaderFrom(store, key, options);
}

/** One tensor read from a file: its raw little-endian bytes. */
export interface LoadedTensor {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly bytes: Buffer;
}

/** Reads one tensor's bytes, by name, from an object whose header was read. */
export async function readTensorFrom(
  store: DurableStore,
  key: string,
  header: SafetensorsHeader,
  name: string,
  options: ReadOptions = {},
): Promise<LoadedTensor> {
  const entry: TensorEntry | undefined = header.tensors.find((t) => t.name === name);
  if (entry === undefined)
    throw new CubeError('UNKNOWN_ID', `${store.locate(key)} has no tensor "${name}"`, {
      where: { file: store.locate(key), path: name },
    });
  const bytes =
    entry.end === entry.begin
      ? Buffer.alloc(0)
      : await readRange(
          store,
          key,
          header.dataStart + entry.begin,
          header.dataStart + entry.end,
          options,
        );
  return { name: entry.name, dtype: entry.dtype, shape: entry.shape, bytes };
}

/**
 * Reads a whole safetensors file into memory (tests, `cube ckpt inspect`, small states),
 * validating the header first. Tensors come back in offset order.
 */
export async function readSafetensorsFile(
  path: string,
  options: ReadOptions = {},
): Promise<{ header: SafetensorsHeader; tensors: ReadonlyMap<string, LoadedTensor> }> {
  const { store, key } = storeOfPath(path);
  const header = await readSafetensorsHeaderFrom(store, key, options);
  const tensors = new Map<string, LoadedTensor>();
  for (const entry of header.tensors)
    tensors.set(entry.name, await readTensorFrom(store, key, header, entry.name, options));
  return { header, tensors };
}

/** The element type a dtype's values are returned in. */
export type TensorValues =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/**
 * A tensor's values as a typed array (a copy, so alignment never matters). F16 and BF16 come
 * back as their raw 16-bit patterns (Uint16Array), F8_E4M3 and F8_E5M2 as their raw 8-bit
 * patterns (Uint8Array); BOOL as 0/1 bytes.
 */
export function tensorValues(tensor: LoadedTensor): TensorValues {
  const copy = new Uint8Array(tensor.bytes).buffer;
  switch (tensor.dtype) {
    case 'F64':
      return new Float64Array(copy);
    case 'F32':
      return new Float32Array(copy);
    case 'I64':
      return new BigInt64Array(copy);
    case 'I32':
      return new Int32Array(copy);
    case 'I16':
      return new Int16Array(copy);
    case 'I8':
      return new Int8Array(copy);
    case 'U64':
      return new BigUint64Array(copy);
    case 'U32':
      return new Uint32Array(copy);
    case 'U8':
    case 'BOOL':
    case 'F8_E4M3':
    case 'F8_E5M2':
      return new Uint8Array(copy);
    case 'U16':
    case 'F16':
    case 'BF16':
      return new Uint16Array(copy);
    default:
      return tensor.dtype satisfies never;
  }
}
