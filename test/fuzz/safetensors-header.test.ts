// The safetensors header parser against random and mutated headers: valid ones from the
// planner mutated byte-wise, offsets overlapping or out of range, huge header lengths,
// non-JSON, wrong dtypes and shapes whose element counts overflow. Only CubeErrors come out,
// and a header the parser accepts describes tensors that lie inside the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CubeError } from '../../src/core/index.ts';
import { dtypeBytes, dtypes, elementCount } from '../../src/ckpt/dtypes.ts';
import {
  parseHeaderLength,
  parseSafetensorsHeader,
  planSafetensors,
  type SafetensorsHeader,
  type TensorInput,
} from '../../src/ckpt/safetensors-header.ts';
import { readSafetensorsFile } from '../../src/ckpt/safetensors-read.ts';
import { fuzzParams } from './fuzz-config.ts';

/** Parses a whole file image the way the reader does: the length, then the JSON. */
function parseImage(image: Buffer): SafetensorsHeader {
  const n = parseHeaderLength(image.subarray(0, 8), image.length, 'fuzz.safetensors');
  return parseSafetensorsHeader(image.subarray(8, 8 + n), image.length, 'fuzz.safetensors');
}

/** What an accepted header must mean: every tensor inside the data section, no overlaps. */
function assertInsideFile(header: SafetensorsHeader, fileBytes: number): void {
  assert.equal(header.dataStart, 8 + header.headerBytes);
  let lastEnd = 0;
  for (const t of header.tensors) {
    assert.ok(Number.isSafeInteger(t.begin) && Number.isSafeInteger(t.end));
    assert.ok(0 <= t.begin && t.begin <= t.end, `${t.name}: [${t.begin}, ${t.end})`);
    assert.ok(header.dataStart + t.end <= fileBytes, `${t.name} ends past the file`);
    assert.equal(t.end - t.begin, elementCount(t.shape) * dtypeBytes[t.dtype]);
    if (t.end > t.begin) {
      assert.ok(t.begin >= lastEnd, `${t.name} overlaps the tensor before it`);
      lastEnd = t.end;
    }
  }
}

/** Runs the parser and checks its outcome: a CubeError, or a header that fits the file. */
function check(image: Buffer): void {
  let header: SafetensorsHeader;
  try {
    header = parseImage(image);
  } catch (error) {
    assert.ok(error instanceof CubeError, `not a CubeError: ${String((error as Error)?.stack)}`);
    assert.equal(error.code, 'INVALID_FILE');
    return;
  }
  assertInsideFile(header, image.length);
}

const dtypeArb = fc.constantFrom(...dtypes);
const tensorArb = fc
  .tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))
  .map(([dtype, shape]): TensorInput => {
    const bytes = elementCount(shape) * dtypeBytes[dtype];
    return { dtype, shape, data: Buffer.alloc(bytes, 0xab) };
  });
const tensorsArb = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12 }).filter((n) => n !== '__metadata__'),
  tensorArb,
  { maxKeys: 5 },
);

/** A valid file image from the planner: the prefix and every tensor's bytes. */
function validImage(
  tensors: Record<string, TensorInput>,
  metadata: Record<string, string>,
): Buffer {
  const plan = planSafetensors(tensors, { metadata });
  const data = Buffer.alloc(plan.header.fileBytes - plan.header.dataStart);
  for (const { entry, input } of plan.inputs)
    Buffer.from(input.data as Buffer).copy(data, entry.begin);
  return Buffer.concat([plan.prefix, data]);
}

const metadataArb = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), {
  maxKeys: 3,
});

test('valid headers from the planner parse back to the same tensors', () => {
  fc.assert(
    fc.property(tensorsArb, metadataArb, (tensors, metadata) => {
      const image = validImage(tensors, metadata);
      const header = parseImage(image);
      assertInsideFile(header, image.length);
      assert.deepEqual(new Set(header.tensors.map((t) => t.name)), new Set(Object.keys(tensors)));
      assert.deepEqual({ ...header.metadata }, { ...metadata });
    }),
    fuzzParams(200),
  );
});

test('valid headers mutated byte-wise give a CubeError or a header inside the file', () => {
  fc.assert(
    fc.property(
      tensorsArb,
      metadataArb,
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 6 }),
      fc.oneof(fc.constant(0), fc.integer({ min: -64, max: 64 })),
      (tensors, metadata, flips, resize) => {
        let image = Buffer.from(validImage(tensors, metadata));
        // Flips land in the length and the JSON mostly, where the parser looks.
        const span = Math.min(image.length, 8 + 200);
        for (const [at, value] of flips) image[at % span] = value;
        if (resize < 0) image = image.subarray(0, Math.max(0, image.length + resize));
        else if (resize > 0) image = Buffer.concat([image, Buffer.alloc(resize)]);
        check(image);
      },
    ),
    fuzzParams(500),
  );
});

/** A header JSON entry for one tensor, with each field drawn from good and bad values. */
const entryArb = fc.oneof(
  fc.record({
    dtype: fc.oneof(dtypeArb, fc.constantFrom('F8', 'f32', '', 'U16', 'I128'), fc.anything()),
    shape: fc.oneof(
      fc.array(fc.nat(10), { maxLength: 4 }),
      // Element counts that overflow: their products are past 2^53 or Infinity.
      fc.constantFrom(
        [2 ** 31, 2 ** 31, 2 ** 31],
        [Number.MAX_SAFE_INTEGER, 2],
        [3, 3002399751580331],
        Array<number>(40).fill(2 ** 30),
        [0, Number.MAX_SAFE_INTEGER],
        [-1],
        [1.5],
        ['1'],
      ),
      fc.anything(),
    ),
    data_offsets: fc.oneof(
      fc.tuple(fc.nat(4096), fc.nat(4096)),
      fc.tuple(
        fc.constantFrom(0, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, 0.5),
        fc.constantFrom(0, -1, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, 0.5),
      ),
      fc.array(fc.nat(100), { maxLength: 3 }),
      fc.anything(),
    ),
  }),
  fc.anything(),
);

test('generated headers with bad dtypes, shapes and offsets give a CubeError or fit the file', () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string({ maxLength: 10 }), entryArb, { maxKeys: 6 }),
      fc.option(fc.anything(), { nil: undefined }),
      fc.nat(5000),
      (entries, metadata, dataBytes) => {
        const object: Record<string, unknown> = { ...entries };
        if (metadata !== undefined) object.__metadata__ = metadata;
        const json = Buffer.from(JSON.stringify(object) ?? 'null', 'utf8');
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(BigInt(json.length), 0);
        check(Buffer.concat([prefix, json, Buffer.alloc(dataBytes)]));
      },
    ),
    fuzzParams(500),
  );
});

test('huge or lying header lengths and non-JSON headers are CubeErrors', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.constantFrom(0n, 1n, 100_000_000n, 100_000_001n, 2n ** 63n, 2n ** 64n - 1n),
      ),
      fc.uint8Array({ maxLength: 300 }),
      (length, rest) => {
        const prefix = Buffer.alloc(8);
        prefix.writeBigUInt64LE(length, 0);
        check(Buffer.concat([prefix, Buffer.from(rest)]));
      },
    ),
    fuzzParams(300),
  );
  // A file shorter than the length field itself.
  for (let n = 0; n < 8; n += 1) check(Buffer.alloc(n));
});

test('mutated safetensors files on disk are read or refused with a CubeError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-fuzz-st-'));
  try {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(
        tensorsArb,
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
        async (tensors, flips) => {
          const image = Buffer.from(validImage(tensors, {}));
          for (const [at, value] of flips) image[at % Math.min(image.length, 160)] = value;
          const path = join(dir, `f${(i += 1)}.safetensors`);
          writeFileSync(path, image);
          try {
            const read = await readSafetensorsFile(path);
            assertInsideFile(read.header, image.length);
            for (const t of read.header.tensors) {
              const got = read.tensors.get(t.name);
              assert.ok(got !== undefined);
              assert.equal(got.bytes.length, t.end - t.begin);
            }
          } catch (error) {
            assert.ok(error instanceof CubeError, `not a CubeError: ${String(error)}`);
          } finally {
            rmSync(path, { force: true });
          }
        },
      ),
      fuzzParams(60, 0.05),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Keeps the dtype list and the byte table in step: a dtype added without a size would make
// the parser accept tensors of NaN bytes.
test('every dtype the parser knows has a positive element size', () => {
  for (const d of dtypes) assert.ok((dtypeBytes[d] ?? 0) > 0, d);
});
