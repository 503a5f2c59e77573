import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import {
  dtypeBytes,
  hashFile,
  planSafetensors,
  readSafetensorsFile,
  readSafetensorsHeader,
  tensorValues,
  writeSafetensorsFile,
  writeSafetensorsInPlace,
  type Dtype,
  type LoadedTensor,
  type TensorMap,
} from '../../src/ckpt/index.ts';
import { repoRoot, runPython, tempDir } from './helpers.ts';

const dir = tempDir('safetensors');
const script = join(repoRoot, 'test/fixtures/ckpt/read_safetensors.py');

/** IEEE half to number (for checking F16 patterns). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function bf16ToNumber(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0] ?? NaN;
}

/** A tensor's values as JSON-comparable numbers/strings/booleans, the Python script's form. */
function jsonValues(t: LoadedTensor): unknown[] {
  const values = tensorValues(t);
  switch (t.dtype) {
    case 'BF16':
      return [...values].map((v) => bf16ToNumber(Number(v)));
    case 'F16':
      return [...values].map((v) => halfToNumber(Number(v)));
    case 'I64':
    case 'U64':
      return [...values].map((v) => String(v));
    case 'BOOL':
      return [...values].map((v) => v !== 0);
    case 'F64':
    case 'F32':
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'U32':
    case 'U16':
    case 'F8_E4M3':
    case 'F8_E5M2':
      return [...values].map(Number);
    default:
      return t.dtype satisfies never;
  }
}

const allDtypes = {
  f64: { shape: [2], data: new Float64Array([1.5, -1e300]) },
  f32: { shape: [2, 3], data: new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]) },
  f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
  bf16: { dtype: 'BF16', shape: [1, 2], data: new Uint16Array([0x3f80, 0xc020]) },
  i64: { shape: [], data: new BigInt64Array([2n ** 53n + 1n]) },
  i32: { shape: [3], data: new Int32Array([-1, 0, 2147483647]) },
  i16: { shape: [2], data: new Int16Array([-32768, 7]) },
  i8: { shape: [2], data: new Int8Array([-128, 127]) },
  u8: { shape: [2], data: new Uint8Array([0, 255]) },
  u64: { shape: [2], data: new BigUint64Array([0n, 2n ** 64n - 1n]) },
  u32: { shape: [2], data: new Uint32Array([2 ** 32 - 1, 5]) },
  u16: { dtype: 'U16', shape: [3], data: new Uint16Array([65535, 1, 0]) },
  f8e4m3: { dtype: 'F8_E4M3', shape: [3], data: new Uint8Array([0x38, 0xb8, 0x7f]) },
  f8e5m2: { dtype: 'F8_E5M2', shape: [2], data: new Uint8Array([0x3c, 0xfc]) },
  bool: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
  empty: { shape: [0, 4], data: new Float32Array(0) },
} as const;

/** The dtypes the independent fixture reader knows (it predates fp8 and the unsigned ones). */
const fixtureDtypes = Object.fromEntries(
  Object.entries(allDtypes).filter(([name]) => !/^(u64|u32|u16|f8e4m3|f8e5m2)$/.test(name)),
) as TensorMap;

describe('safetensors', () => {
  test('a file written from typed arrays reads back with the same dtypes, shapes and values', async () => {
    const path = join(dir, 'round-trip.safetensors');
    const written = await writeSafetensorsFile(path, allDtypes, {
      metadata: { format: 'pt', 'cube.step': '3' },
    });
    const { header, tensors } = await readSafetensorsFile(path);
    assert.equal(written.bytes, readFileSync(path).byteLength);
    assert.deepEqual(header.metadata, { format: 'pt', 'cube.step': '3' });
    const json = readFileSync(path).subarray(8, header.dataStart).toString('utf8');
    assert.equal(
      header.headerBytes,
      Math.ceil(json.trimEnd().length / 8) * 8,
      'padded to 8, no more',
    );
    let end = 0;
    for (const t of header.tensors) {
      assert.equal(t.begin, end, `${t.name} follows the previous tensor with no gap`);
      assert.equal((header.dataStart + t.begin) % dtypeBytes[t.dtype], 0, `${t.name} is aligned`);
      end = t.end;
    }
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(allDtypes).sort());
    assert.deepEqual(tensorValues(tensors.get('f32')!), allDtypes.f32.data);
    assert.deepEqual(tensors.get('f32')!.shape, [2, 3]);
    assert.deepEqual(tensorValues(tensors.get('i64')!), allDtypes.i64.data);
    assert.deepEqual(tensorValues(tensors.get('bf16')!), allDtypes.bf16.data);
    assert.deepEqual(tensorValues(tensors.get('u64')!), allDtypes.u64.data);
    assert.deepEqual(tensorValues(tensors.get('u32')!), allDtypes.u32.data);
    assert.deepEqual(tensorValues(tensors.get('u16')!), allDtypes.u16.data);
    assert.deepEqual(tensorValues(tensors.get('f8e4m3')!), allDtypes.f8e4m3.data);
    assert.equal(tensors.get('f8e5m2')!.dtype, 'F8_E5M2');
    assert.equal(tensors.get('bool')!.dtype, 'BOOL');
    assert.equal(tensors.get('empty')!.bytes.byteLength, 0);
  });

  test('tensors are laid out in the order of the reference writer: larger dtypes first, then by name', () => {
    const { header } = planSafetensors(allDtypes);
    assert.deepEqual(
      header.tensors.map((t) => t.name),
      [
        'u64',
        'i64',
        'f64',
        'empty',
        'f32',
        'u32',
        'i32',
        'bf16',
        'f16',
        'u16',
        'i16',
        'f8e4m3',
        'f8e5m2',
        'i8',
        'u8',
        'bool',
      ],
    );
    const json = planSafetensors(allDtypes).prefix.subarray(8).toString('utf8');
    const keys = Object.keys(JSON.parse(json) as object);
    assert.deepEqual(
      keys,
      ['__metadata__', ...header.tensors.map((t) => t.name)],
      'the header too',
    );
  });

  test('names of one dtype are ordered by their UTF-8 bytes, as Rust orders them', () => {
    // U+FF5E is EF BD 9E in UTF-8 and U+1F600 is F0 9F 98 80, but in UTF-16 the emoji's
    // surrogate D83D sorts before FF5E: a JavaScript string sort would swap them.
    const one = { shape: [1], data: new Float32Array(1) };
    const { header } = planSafetensors({ '\u{1F600}': one, '\uFF5E': one, b: one, a: one });
    assert.deepEqual(
      header.tensors.map((t) => t.name),
      ['a', 'b', '\uFF5E', '\u{1F600}'],
    );
  });

  test('a shard in the old layout (tensors in the order given, data at a 64-byte offset) still reads', async () => {
    // Shards written before the reference order: tensors in the state's order (an I8 before an
    // F32, so the F32 is misaligned) and the header padded with spaces so the data starts at a
    // 64-byte offset. Readers never depended on order, so checkpoints of that time restore.
    const old: [string, Dtype, number[], Buffer][] = [
      ['model/w', 'F32', [2, 2], Buffer.from(new Float32Array([1, -2, 3.5, 0]).buffer)],
      ['data/i8', 'I8', [3], Buffer.from([0xff, 1, 2])],
      ['model/b', 'F32', [1], Buffer.from(new Float32Array([9]).buffer)],
      ['optimizer/step', 'I64', [], Buffer.from(new BigInt64Array([77n]).buffer)],
    ];
    let offset = 0;
    const header: Record<string, unknown> = {
      __metadata__: { format: 'pt', 'cube.job': 'old', 'cube.step': '5', 'cube.rank': '0' },
    };
    for (const [name, dtype, shape, data] of old) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
      offset += data.byteLength;
    }
    const json = Buffer.from(JSON.stringify(header));
    const headerBytes = Math.ceil((8 + json.byteLength) / 64) * 64 - 8;
    const prefix = Buffer.alloc(8 + headerBytes, 0x20);
    prefix.writeBigUInt64LE(BigInt(headerBytes));
    json.copy(prefix, 8);
    const path = join(dir, 'old-layout.safetensors');
    writeFileSync(path, Buffer.concat([prefix, ...old.map((t) => t[3])]));

    const { header: read, tensors } = await readSafetensorsFile(path);
    assert.equal(read.dataStart % 64, 0);
    assert.deepEqual(read.metadata['cube.step'], '5');
    for (const [name, dtype, shape, data] of old) {
      const t = tensors.get(name)!;
      assert.equal(t.dtype, dtype, name);
      assert.deepEqual(t.shape, shape, name);
      assert.ok(t.bytes.equals(data), name);
    }
  });

  test('the xxh3 returned by the writer is the XXH3-64 of the file, as Python computes it', async () => {
    const path = join(dir, 'hash.safetensors');
    const written = await writeSafetensorsFile(path, allDtypes);
    assert.deepEqual(await hashFile(path), { bytes: written.bytes, xxh3: written.xxh3 });
    const r = runPython([
      '-c',
      'import sys, json, xxhash; print(json.dumps(xxhash.xxh3_64(open(sys.argv[1], "rb").read()).hexdigest()))',
      path,
    ]);
    assert.equal(r, written.xxh3);
  });

  test('tensors given as streams are written without being gathered first', async () => {
    const path = join(dir, 'stream.safetensors');
    const chunks = Readable.from([0, 1, 2, 3].map((i) => new Uint8Array(1000).fill(i)));
    await writeSafetensorsFile(path, { big: { dtype: 'U8', shape: [4000], data: chunks } });
    const { tensors } = await readSafetensorsFile(path);
    const bytes = tensors.get('big')!.bytes;
    assert.equal(bytes.byteLength, 4000);
    assert.equal(bytes[0], 0);
    assert.equal(bytes[3999], 3);
  });

  test('a stream shorter than its shape fails and leaves no file', async () => {
    const path = join(dir, 'short.safetensors');
    const short = Readable.from([new Uint8Array(10)]);
    await assert.rejects(
      writeSafetensorsFile(path, { t: { dtype: 'U8', shape: [20], data: short } }),
      /tensor "t": its stream gave only 10 bytes, expected 20/,
    );
    await assert.rejects(readSafetensorsHeader(path), /not found/);
  });

  test('data whose length disagrees with shape and dtype is refused, naming the tensor', () => {
    assert.throws(
      () => planSafetensors({ w: { shape: [3], data: new Float32Array(2) } }),
      (e: unknown) =>
        e instanceof CubeError && /tensor "w".*12 bytes but the data has 8/.test(e.message),
    );
    assert.throws(
      () => planSafetensors({ h: { shape: [2], data: new Uint16Array(2) } }),
      /tensor "h": the dtype cannot be told/,
    );
  });

  test('an L1 slot is rewritten in place and shrinks to the new content', async () => {
    const path = join(dir, 'slot.safetensors');
    await writeSafetensorsInPlace(path, { w: { shape: [1000], data: new Float64Array(1000) } });
    const second = await writeSafetensorsInPlace(path, {
      w: { shape: [2], data: new Float64Array([7, 8]) },
    });
    assert.equal(readFileSync(path).byteLength, second.bytes);
    assert.equal((await hashFile(path)).xxh3, second.xxh3);
    const { tensors } = await readSafetensorsFile(path);
    assert.deepEqual(tensorValues(tensors.get('w')!), new Float64Array([7, 8]));
  });

  test('an independent Python reader loads the TS-written file with the same values', async () => {
    const path = join(dir, 'for-python.safetensors');
    await writeSafetensorsFile(path, fixtureDtypes, { metadata: { format: 'pt' } });
    const fromPython = runPython([script, 'read', path]) as {
      header_padded_to_8: boolean;
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: unknown[] }>;
    };
    assert.equal(fromPython.header_padded_to_8, true);
    assert.deepEqual(fromPython.metadata, { format: 'pt' });
    const { tensors } = await readSafetensorsFile(path);
    for (const [name, t] of tensors) {
      const py = fromPython.tensors[name];
      assert.ok(py !== undefined, `python sees ${name}`);
      assert.equal(py.dtype, t.dtype, name);
      assert.deepEqual(py.shape, t.shape, name);
      assert.deepEqual(py.values, jsonValues(t), name);
    }
  });

  test('the TS reader loads a file written from numpy bytes by the independent script', async () => {
    const path = join(dir, 'from-python.safetensors');
    const expected = runPython([script, 'write', path]) as Record<
      string,
      { dtype: string; shape: number[]; values: unknown[] }
    >;
    const { header, tensors } = await readSafetensorsFile(path);
    assert.deepEqual(header.metadata, {
      format: 'pt',
      'cube.job': 'py',
      'cube.step': '7',
      'cube.rank': '0',
    });
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) {
      const t = tensors.get(name)!;
      assert.equal(t.dtype, want.dtype, name);
      assert.deepEqual(t.shape, want.shape, name);
      assert.deepEqual(jsonValues(t), want.values, name);
    }
  });
});

describe('safetensors header validation', () => {
  /** Writes a file from a header object and a data length; returns its path. */
  function craft(name: string, header: unknown, dataBytes: number, rawHeader?: string): string {
    const json = Buffer.from(rawHeader ?? JSON.stringify(header));
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(json.byteLength));
    const path = join(dir, `${name}.safetensors`);
    writeFileSync(path, Buffer.concat([n, json, Buffer.alloc(dataBytes)]));
    return path;
  }
  const f32 = (begin: number, end: number, shape: number[]): unknown => ({
    dtype: 'F32',
    shape,
    data_offsets: [begin, end],
  });

  const cases: [string, () => string, RegExp][] = [
    [
      'an unknown dtype',
      () => craft('dtype', { w: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1),
      /tensor "w": unknown dtype "F8"/,
    ],
    [
      'offsets out of the file',
      () => craft('range', { w: f32(0, 16, [4]) }, 8),
      /tensors need .* \(truncated\?\)/,
    ],
    [
      'overlapping tensors',
      () => craft('overlap', { a: f32(0, 16, [4]), b: f32(8, 24, [4]) }, 24),
      /tensor "b": data_offsets \[8, 24\] overlap tensor "a"/,
    ],
    [
      'shape × dtype unlike the span',
      () => craft('span', { w: f32(0, 12, [4]) }, 12),
      /tensor "w": shape \[4\] of F32 is 16 bytes but data_offsets \[0, 12\] span 12/,
    ],
    [
      'trailing bytes after the last tensor',
      () => craft('trail', { w: f32(0, 4, [1]) }, 8),
      /trailing bytes/,
    ],
    ['a non-JSON header', () => craft('json', null, 0, '{"w": '), /the header is not valid JSON/],
    [
      'non-string metadata',
      () => craft('meta', { __metadata__: { a: 1 } }, 0),
      /__metadata__.a is not a string/,
    ],
    [
      'an unexpected key',
      () => craft('key', { w: { ...(f32(0, 4, [1]) as object), extra: 1 } }, 4),
      /tensor "w": unexpected keys extra/,
    ],
  ];
  for (const [what, make, message] of cases)
    test(`a header with ${what} is rejected, naming the file`, async () => {
      const path = make();
      await assert.rejects(readSafetensorsHeader(path), (e: unknown) => {
        assert.ok(e instanceof CubeError);
        assert.equal(e.code, 'INVALID_FILE');
        assert.match(e.message, message);
        assert.ok(e.message.includes(path), e.message);
        return true;
      });
    });

  test('a header length that runs past the end of the file is rejected', async () => {
    const path = join(dir, 'past.safetensors');
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(1000n);
    writeFileSync(path, Buffer.concat([n, Buffer.from('{}')]));
    await assert.rejects(readSafetensorsHeader(path), /header length 1000 runs past the end/);
  });

  test('a truncated shard is rejected as truncated', async () => {
    const path = join(dir, 'cut.safetensors');
    await writeSafetensorsFile(path, { w: { shape: [100], data: new Float32Array(100) } });
    const full = readFileSync(path);
    writeFileSync(path, full.subarray(0, full.byteLength - 10));
    await assert.rejects(readSafetensorsHeader(path), /truncated/);
  });

  test('tensors separated by gaps (the alignment padding) and contiguous ones both read', async () => {
    const gapped = craft('gap', { a: f32(0, 4, [1]), b: f32(64, 68, [1]) }, 68);
    const packed = craft('packed', { a: f32(0, 4, [1]), b: f32(4, 8, [1]) }, 8);
    assert.equal((await readSafetensorsHeader(gapped)).tensors.length, 2);
    assert.equal((await readSafetensorsHeader(packed)).tensors.length, 2);
  });
});
