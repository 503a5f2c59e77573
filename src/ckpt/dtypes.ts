/** The tensor element types a Cube shard may hold (docs/checkpoint-format.md, "Shard file"). */
export const dtypes = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'F8_E4M3',
  'F8_E5M2',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
] as const;

export type Dtype = (typeof dtypes)[number];

/** Bytes per element of each dtype. */
export const dtypeBytes: Readonly<Record<Dtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/**
 * Each dtype's position in the reference writer's `Dtype` enum (safetensors' `tensor.rs`), which
 * is in increasing alignment order. Its `serialize` lays tensors out by this rank, highest
 * first, then by name, so every tensor is aligned to its element size once the data starts at
 * a multiple of 8; Cube's writers use the same order to produce the same bytes.
 */
export const dtypeAlignmentRank: Readonly<Record<Dtype, number>> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  F8_E5M2: 3,
  F8_E4M3: 4,
  I16: 5,
  U16: 6,
  F16: 7,
  BF16: 8,
  I32: 9,
  U32: 10,
  F32: 11,
  F64: 12,
  I64: 13,
  U64: 14,
};

/** True when `name` is one of the dtypes of the format. */
export function isDtype(name: unknown): name is Dtype {
  return typeof name === 'string' && (dtypes as readonly string[]).includes(name);
}

/**
 * The dtype a typed array implies, or null when its element type is ambiguous (a Uint16Array
 * may hold F16, BF16 or U16, a Uint8Array U8, BOOL or an fp8, a Buffer anything) and the caller
 * must say.
 */
export function impliedDtype(view: ArrayBufferView): Dtype | null {
  if (view instanceof Float64Array) return 'F64';
  if (view instanceof Float32Array) return 'F32';
  if (view instanceof BigInt64Array) return 'I64';
  if (view instanceof Int32Array) return 'I32';
  if (view instanceof Int16Array) return 'I16';
  if (view instanceof Int8Array) return 'I8';
  if (view instanceof BigUint64Array) return 'U64';
  if (view instanceof Uint32Array) return 'U32';
  if (view instanceof Uint8Array && !Buffer.isBuffer(view)) return 'U8';
  return null;
}

/** The number of elements of a shape (1 for a scalar `[]`); NaN when a dim is not a count. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) return Number.NaN;
    n *= dim;
  }
  return n;
}
