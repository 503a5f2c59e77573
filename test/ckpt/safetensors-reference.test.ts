// Cube's shards and the reference `safetensors` library (Hugging Face's, the one behind
// safetensors.torch.save_file / load_file): the reference loads what Cube writes, bit for bit,
// Cube reads what the reference writes, and for the same tensors and metadata the two writers
// produce the same bytes. Needs an interpreter with torch >= 2.3 and safetensors in
// CUBE_PYTHON (the project's environment); without one these tests are skipped, saying why.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  readSafetensorsFile,
  readSafetensorsHeader,
  saveShard,
  writeSafetensorsFile,
  type Dtype,
} from '../../src/ckpt/index.ts';
import { fileKey, shardFile, slotFile } from '../../src/ckpt/layout.ts';
import { python, repoRoot, tempDir } from './helpers.ts';

const dir = tempDir('safetensors-reference');
const script = join(repoRoot, 'test/fixtures/ckpt/reference_safetensors.py');
const interpreter = process.env.CUBE_PYTHON ?? python;

/** Why the reference tests cannot run with this interpreter, or undefined when they can. */
function unavailable(): string | undefined {
  const r = spawnSync(interpreter, [script, 'probe'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').at(-1);
  return `the reference safetensors library is not usable: ${why} (set CUBE_PYTHON to an interpreter with torch >= 2.3 and safetensors)`;
}
const skip = unavailable();

/** The torch dtype names the reference reports, as the format's names. */
const fromTorch: Readonly<Record<string, Dtype>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint64: 'U64',
  uint32: 'U32',
  uint16: 'U16',
  uint8: 'U8',
  bool: 'BOOL',
};

interface ReferenceView {
  readonly metadata: Record<string, string> | null;
  readonly tensors: Record<string, { dtype: string; shape: number[]; hex: string }>;
}

function reference(args: readonly string[]): ReferenceView {
  const r = spawnSync(interpreter, [script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reference_safetensors.py ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ReferenceView;
}

/** Deterministic bytes (a NaN, a -0.0 and fp8 patterns among them): n bytes from a seed. */
function bytesOf(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** One tensor of every dtype of the format, plus an empty one and a scalar, named out of order. */
function everyDtype(): Map<string, { dtype: Dtype; shape: number[]; data: Buffer }> {
  const f32 = bytesOf(4 * 15, 1);
  f32.writeFloatLE(Number.NaN, 0);
  f32.writeFloatLE(-0, 4);
  const bool = Buffer.from([1, 0, 1, 1]);
  const entries: [string, Dtype, number[], Buffer][] = [
    ['model/embed.weight', 'F32', [3, 5], f32],
    ['model/head.bias', 'F64', [4], bytesOf(32, 2)],
    ['model/norm.weight', 'F16', [6], bytesOf(12, 3)],
    ['model/bf16', 'BF16', [2, 3], bytesOf(12, 4)],
    ['model/fp8.e4m3', 'F8_E4M3', [9], bytesOf(9, 5)],
    ['model/fp8.e5m2', 'F8_E5M2', [2, 2], bytesOf(4, 6)],
    ['optimizer/state/0/step', 'I64', [], bytesOf(8, 7)],
    ['data/i32', 'I32', [3], bytesOf(12, 8)],
    ['data/i16', 'I16', [2], bytesOf(4, 9)],
    ['data/i8', 'I8', [3], bytesOf(3, 10)],
    ['data/u64', 'U64', [2], bytesOf(16, 11)],
    ['data/u32', 'U32', [2], bytesOf(8, 12)],
    ['data/u16', 'U16', [3], bytesOf(6, 13)],
    ['data/u8', 'U8', [2], bytesOf(2, 14)],
    ['data/mask', 'BOOL', [4], bool],
    ['data/empty', 'F32', [0, 4], Buffer.alloc(0)],
  ];
  return new Map(entries.map(([name, dtype, shape, data]) => [name, { dtype, shape, data }]));
}

/** Asserts the reference saw exactly these tensors, bit for bit. */
function assertSameTensors(
  seen: ReferenceView,
  expected: ReadonlyMap<string, { dtype: Dtype; shape: readonly number[]; data: Buffer }>,
  where: string,
): void {
  assert.deepEqual(Object.keys(seen.tensors).sort(), [...expected.keys()].sort(), where);
  for (const [name, want] of expected) {
    const got = seen.tensors[name]!;
    assert.equal(fromTorch[got.dtype], want.dtype, `${where}: ${name} dtype`);
    assert.deepEqual(got.shape, want.shape, `${where}: ${name} shape`);
    assert.equal(got.hex, want.data.toString('hex'), `${where}: ${name} bytes`);
  }
}

const shardMetadata = { format: 'pt', 'cube.job': 'xref', 'cube.step': '100', 'cube.rank': '0' };

describe('safetensors and the reference library', { skip }, () => {
  test('the TS writer produces the bytes the reference writer produces for the same tensors and metadata', async () => {
    const tensors = everyDtype();
    const ours = join(dir, 'ours.safetensors');
    await writeSafetensorsFile(ours, tensors, { metadata: shardMetadata });
    const theirs = join(dir, 'theirs.safetensors');
    reference(['resave', ours, theirs]);
    // The reference writes `__metadata__` from a Rust HashMap, in an order that changes from
    // run to run; JSON key order means nothing, so write ours again in the order it chose.
    const theirHeader = await readSafetensorsHeader(theirs);
    assert.deepEqual(theirHeader.metadata, shardMetadata);
    const sameOrder = join(dir, 'ours-in-their-order.safetensors');
    await writeSafetensorsFile(sameOrder, tensors, { metadata: { ...theirHeader.metadata } });
    assert.ok(
      readFileSync(sameOrder).equals(readFileSync(theirs)),
      'byte-identical to safetensors.torch.save_file',
    );
    const ourHeader = await readSafetensorsHeader(ours);
    assert.equal(ourHeader.headerBytes, theirHeader.headerBytes);
    assert.deepEqual(ourHeader.tensors, theirHeader.tensors, 'the same order and offsets');

    // With a single metadata key there is no order to choose: the files are equal as written.
    const single = join(dir, 'single.safetensors');
    await writeSafetensorsFile(single, tensors, { metadata: { format: 'pt' } });
    const singleTheirs = join(dir, 'single-theirs.safetensors');
    reference(['resave', single, singleTheirs]);
    assert.ok(readFileSync(single).equals(readFileSync(singleTheirs)));
  });

  test('shards the engine saves, at a level root and in an L1 slot, load in the reference library bit for bit', async () => {
    const tensors = everyDtype();
    const root = join(dir, 'levels');
    for (const slot of [undefined, 1]) {
      const record = await saveShard(root, {
        job: 'xref',
        step: 100,
        rank: 0,
        worldSize: 1,
        node: 'n0',
        tensors,
        ...(slot === undefined ? {} : { slot }),
      });
      const file = join(
        root,
        fileKey('xref', slot === undefined ? shardFile(100, 0) : slotFile(0, slot)),
      );
      assert.equal(readFileSync(file).byteLength, record.bytes);
      const seen = reference(['load', file]);
      assert.deepEqual(seen.metadata, shardMetadata);
      assertSameTensors(seen, tensors, slot === undefined ? 'L3 shard' : 'L1 slot');
    }
  });

  test('the TS reader reads files the reference library wrote, every dtype bit for bit', async () => {
    const path = join(dir, 'from-reference.safetensors');
    const written = reference(['write', path]);
    const { header, tensors } = await readSafetensorsFile(path);
    assert.deepEqual(header.metadata, written.metadata);
    const expected = new Map(
      Object.entries(written.tensors).map(([name, t]) => [
        name,
        { dtype: fromTorch[t.dtype]!, shape: t.shape, data: Buffer.from(t.hex, 'hex') },
      ]),
    );
    assert.equal(expected.size, 16);
    assert.deepEqual(
      new Set([...expected.values()].map((t) => t.dtype)).size,
      15,
      'every dtype of the format is in the sample',
    );
    assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort());
    for (const [name, want] of expected) {
      const got = tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.ok(got.bytes.equals(want.data), `${name} bytes`);
    }
  });
});
