/**
 * The safetensors header: planning one for writing, and parsing + validating one for reading.
 * Layout: 8-byte little-endian header length N, N bytes of JSON padded with spaces to a
 * multiple of 8, then the data; offsets in the header are relative to the data start.
 */
import { CubeError } from '../core/index.ts';
import {
  dtypeAlignmentRank,
  dtypeBytes,
  dtypes,
  elementCount,
  impliedDtype,
  isDtype,
  type Dtype,
} from './dtypes.ts';

/** The largest header a reader accepts (the reference implementation's limit). */
export const maxHeaderBytes = 100_000_000;
/** The JSON header is padded with spaces to a multiple of this: the format's rule, and all the reference writer pads. */
export const headerAlignBytes = 8;

/** One tensor to write. `data` is exactly `shape × dtype` bytes, little-endian, C order. */
export interface TensorInput {
  /** Needed when `data` does not imply it (Uint16Array for F16/BF16/U16, Buffer, a stream). */
  readonly dtype?: Dtype;
  readonly shape: readonly number[];
  /** The bytes: a typed array or Buffer (written without a copy), or a stream of chunks. */
  readonly data: ArrayBufferView | AsyncIterable<Uint8Array>;
}

/** Named tensors; the file lays them out in the reference order, not in this one. */
export type TensorMap = ReadonlyMap<string, TensorInput> | Readonly<Record<string, TensorInput>>;

/** Where one tensor lives in a file. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Offsets relative to the data start, `end` exclusive. */
  readonly begin: number;
  readonly end: number;
}

/** A parsed (or planned) header. */
export interface SafetensorsHeader {
  /** N, the JSON header's length including its padding. */
  readonly headerBytes: number;
  /** 8 + N: where offset 0 of the data is in the file. */
  readonly dataStart: number;
  /** The whole file's length: dataStart + the end of the last tensor. */
  readonly fileBytes: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** In offset order. */
  readonly tensors: readonly TensorEntry[];
}

/** A header ready to write, with the inputs in data order. */
export interface SafetensorsPlan {
  readonly header: SafetensorsHeader;
  /** The 8-byte length followed by the padded JSON. */
  readonly prefix: Buffer;
  readonly inputs: readonly { readonly entry: TensorEntry; readonly input: TensorInput }[];
}

function entriesOf(tensors: TensorMap): [string, TensorInput][] {
  return tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, TensorInput>).entries()]
    : Object.entries(tensors as Readonly<Record<string, TensorInput>>);
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/**
 * Plans a file as the reference writer (`serialize` in safetensors' `tensor.rs`, behind
 * `safetensors.torch.save_file`) lays it out, byte for byte: tensors sorted by descending dtype
 * alignment (`dtypeAlignmentRank`), then by name (UTF-8 bytes), packed with no gap; the header
 * JSON compact, `__metadata__` first (in the caller's key order), then the tensors in data
 * order, padded with spaces to a multiple of 8. Throws INVALID_VALUE naming the tensor whose
 * dtype, shape and byte length disagree.
 */
export function planSafetensors(
  tensors: TensorMap,
  options: { readonly metadata?: Readonly<Record<string, string>> } = {},
): SafetensorsPlan {
  const metadata = options.metadata ?? {};
  const checked: { name: string; key: Buffer; dtype: Dtype; bytes: number; input: TensorInput }[] =
    [];
  for (const [name, input] of entriesOf(tensors)) {
    const bad = (why: string): CubeError =>
      new CubeError('INVALID_VALUE', `tensor "${name}": ${why}`, { where: { path: name } });
    if (name === '' || name === '__metadata__') throw bad('is not a usable tensor name');
    const isView = ArrayBuffer.isView(input.data);
    const dtype = input.dtype ?? (isView ? impliedDtype(input.data) : null);
    if (dtype === null)
      throw bad('the dtype cannot be told from the data; pass dtype (e.g. F16, BF16, BOOL)');
    if (!isDtype(dtype)) throw bad(`unknown dtype ${String(dtype)}`);
    const count = elementCount(input.shape);
    if (Number.isNaN(count)) throw bad(`shape [${input.shape.join(', ')}] is not a list of counts`);
    const bytes = count * dtypeBytes[dtype];
    if (isView && input.data.byteLength !== bytes)
      throw bad(
        `shape [${input.shape.join(', ')}] of ${dtype} is ${bytes} bytes but the data has ${input.data.byteLength}`,
      );
    checked.push({ name, key: Buffer.from(name, 'utf8'), dtype, bytes, input });
  }
  // Rust compares names as bytes; JavaScript's `<` compares UTF-16 units, which orders
  // characters above U+FFFF differently, so compare the UTF-8 bytes.
  checked.sort(
    (a, b) =>
      dtypeAlignmentRank[b.dtype] - dtypeAlignmentRank[a.dtype] || Buffer.compare(a.key, b.key),
  );
  const inputs: { entry: TensorEntry; input: TensorInput }[] = [];
  let offset = 0;
  for (const { name, dtype, bytes, input } of checked) {
    const entry: TensorEntry = {
      name,
      dtype,
      shape: [...input.shape],
      begin: offset,
      end: offset + bytes,
    };
    inputs.push({ entry, input });
    offset = entry.end;
  }
  const parts = [`"__metadata__":${JSON.stringify(metadata)}`];
  for (const { entry } of inputs)
    parts.push(
      `${JSON.stringify(entry.name)}:${JSON.stringify({ dtype: entry.dtype, shape: entry.shape, data_offsets: [entry.begin, entry.end] })}`,
    );
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const headerBytes = alignUp(json.byteLength, headerAlignBytes);
  const prefix = Buffer.alloc(8 + headerBytes, 0x20);
  prefix.writeBigUInt64LE(BigInt(headerBytes), 0);
  json.copy(prefix, 8);
  return {
    header: {
      headerBytes,
      dataStart: 8 + headerBytes,
      fileBytes: 8 + headerBytes + offset,
      metadata,
      tensors: inputs.map((i) => i.entry),
    },
    prefix,
    inputs,
  };
}

/** Reads the header length from a file's first 8 bytes, checking it against the file size. */
export function parseHeaderLength(first8: Uint8Array, fileBytes: number, file: string): number {
  const fail = (why: string): CubeError =>
    new CubeError('INVALID_FILE', `${file} is not a safetensors file: ${why}`, {
      where: { file },
    });
  if (fileBytes < 8 || first8.byteLength < 8)
    throw fail(`it is ${fileBytes} bytes, shorter than the 8-byte header length`);
  const n = Buffer.from(first8.buffer, first8.byteOffset, 8).readBigUInt64LE(0);
  if (n > BigInt(maxHeaderBytes))
    throw fail(`the header length ${n} is over the ${maxHeaderBytes}-byte limit`);
  if (8n + n > BigInt(fileBytes))
    throw fail(`the header length ${n} runs past the end of the ${fileBytes}-byte file`);
  return Number(n);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates a header strictly: UTF-8 JSON object; `__metadata__` (optional) maps
 * strings to strings; each tensor has exactly a known dtype, a shape of counts and
 * `data_offsets` [begin, end] with end − begin = elements × dtype size; offsets do not
 * overlap and the last one ends exactly at the end of the file. Gaps between tensors (the
 * alignment padding) are allowed. Errors name the file and the tensor.
 */
export function parseSafetensorsHeader(
  headerJson: Uint8Array,
  fileBytes: number,
  file: string,
): SafetensorsHeader {
  const headerBytes = headerJson.byteLength;
  const fail = (why: string, tensor?: string): CubeError =>
    new CubeError(
      'INVALID_FILE',
      `${file}: ${tensor === undefined ? '' : `tensor "${tensor}": `}${why}`,
      { where: { file, ...(tensor === undefined ? {} : { path: tensor }) } },
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerJson);
  } catch {
    throw fail('the header is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw fail(`the header is not valid JSON (${(cause as Error).message})`);
  }
  if (!isPlainObject(parsed)) throw fail('the header is not a JSON object');

  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) throw fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value))
        if (typeof v !== 'string') throw fail(`__metadata__.${k} is not a string`);
      metadata = value as Record<string, string>;
      continue;
    }
    if (!isPlainObject(value)) throw fail('the entry is not an object', name);
    const extraKeys = Object.keys(value).filter(
      (k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets',
    );
    if (extraKeys.length > 0) throw fail(`unexpected keys ${extraKeys.join(', ')}`, name);
    const { dtype, shape, data_offsets: offsets } = value;
    if (!isDtype(dtype))
      throw fail(`unknown dtype ${JSON.stringify(dtype)} (known: ${dtypes.join(' ')})`, name);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0))
      throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      offsets.some((o) => !Number.isSafeInteger(o) || (o as number) < 0)
    )
      throw fail(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`, name);
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    const expected = elementCount(shape as number[]) * dtypeBytes[dtype];
    if (end - begin !== expected)
      throw fail(
        `shape [${(shape as number[]).join(', ')}] of ${dtype} is ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
        name,
      );
    tensors.push({ name, dtype, shape: shape as number[], begin, end });
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: TensorEntry | undefined;
  let dataEnd = 0;
  for (const t of tensors) {
    // Empty tensors occupy no bytes and cannot overlap anything.
    if (t.begin === t.end) continue;
    if (last !== undefined && t.begin < last.end)
      throw fail(`data_offsets [${t.begin}, ${t.end}] overlap tensor "${last.name}"`, t.name);
    last = t;
    dataEnd = t.end;
  }
  for (const t of tensors) dataEnd = Math.max(dataEnd, t.end);
  const dataStart = 8 + headerBytes;
  if (dataStart + dataEnd !== fileBytes)
    throw fail(
      dataStart + dataEnd > fileBytes
        ? `the file is ${fileBytes} bytes but its tensors need ${dataStart + dataEnd} (truncated?)`
        : `the file is ${fileBytes} bytes but its tensors end at ${dataStart + dataEnd} (trailing bytes)`,
    );
  return { headerBytes, dataStart, fileBytes, metadata, tensors };
}
