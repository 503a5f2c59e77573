/** The tensor element types a Cube shard may hold (docs/checkpoint-format.md, "Shard file"). */
export const dtypes = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
  'I16',
  'I8',
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
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** True when `name` is one of the dtypes of the format. */
export function isDtype(name: unknown): name is Dtype {
  return typeof name === 'string' && (dtypes as readonly string[]).includes(name);
}

/**
 * The dtype a typed array implies, or null when its element type is ambiguous (a Uint16Array
 * may hold F16 or BF16, a Uint8Array U8 or BOOL, a Buffer anything) and the caller must say.
 */
export function impliedDtype(view: ArrayBufferView): Dtype | null {
  if (view instanceof Float64Array) return 'F64';
  if (view instanceof Float32Array) return 'F32';
  if (view instanceof BigInt64Array) return 'I64';
  if (view instanceof Int32Array) return 'I32';
  if (view instanceof Int16Array) return 'I16';
  if (view instanceof Int8Array) return 'I8';
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
