import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { createVerifyingStream, verifyStep, xxh3Hex } from '../../src/ckpt/index.ts';
import { flipByte, tempDir, writeStep } from './helpers.ts';

const dir = tempDir('verify');
let n = 0;
const freshRoot = (): string => join(dir, `root-${n++}`);
const shardPath = (root: string, step: number, rank: number): string =>
  join(
    root,
    'job',
    `step-${String(step).padStart(10, '0')}`,
    `rank-${String(rank).padStart(5, '0')}.safetensors`,
  );

describe('verify', () => {
  test('an intact step verifies ok, shard by shard', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 1, { worldSize: 2 });
    const result = await verifyStep(root, 'job', 1, { level: 'L3' });
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.shards.map((s) => [s.rank, s.kind]),
      [
        [0, 'ok'],
        [1, 'ok'],
      ],
    );
  });

  test('a flipped byte in a shard is a checksum mismatch naming the file', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 1, { worldSize: 2 });
    flipByte(shardPath(root, 1, 1));
    const result = await verifyStep(root, 'job', 1, { level: 'L3' });
    assert.equal(result.ok, false);
    const bad = result.shards.find((s) => s.rank === 1);
    assert.equal(bad?.kind, 'checksum-mismatch');
    assert.equal(bad?.file, shardPath(root, 1, 1));
    assert.match(bad?.kind === 'checksum-mismatch' ? bad.message : '', /\(corrupt\)/);
    assert.equal(result.shards.find((s) => s.rank === 0)?.kind, 'ok');
  });

  test('a missing shard is reported missing', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 1, { worldSize: 2 });
    rmSync(shardPath(root, 1, 0));
    const result = await verifyStep(root, 'job', 1, { level: 'L3' });
    assert.equal(result.ok, false);
    assert.equal(result.shards.find((s) => s.rank === 0)?.kind, 'missing');
  });

  test('a step without a manifest has its recorded shards checked against their records', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 1, { worldSize: 2, commit: false });
    const good = await verifyStep(root, 'job', 1, { level: 'L3' });
    assert.equal(good.state, 'uncommitted');
    assert.equal(good.ok, true);
    assert.equal(good.shards.length, 2);
    flipByte(shardPath(root, 1, 0));
    const bad = await verifyStep(root, 'job', 1, { level: 'L3' });
    assert.equal(bad.ok, false);
    assert.equal(bad.shards.find((s) => s.rank === 0)?.kind, 'checksum-mismatch');
  });

  test('a verifying stream passes good content through and fails on a changed byte', async () => {
    const root = freshRoot();
    const [record] = await writeStep(root, 'job', 1, { worldSize: 1 });
    const bytes = readFileSync(shardPath(root, 1, 0));
    const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });
    const expected = { bytes: record!.bytes, xxh3: record!.xxh3 };
    await pipeline(Readable.from([bytes]), createVerifyingStream(expected, 'shard'), sink());
    const bad = Buffer.from(bytes);
    bad[100] = (bad[100] ?? 0) ^ 1;
    assert.notEqual(xxh3Hex(bad), record!.xxh3);
    await assert.rejects(
      pipeline(Readable.from([bad]), createVerifyingStream(expected, 'shard'), sink()),
      /shard: xxh3 [0-9a-f]{16}, expected [0-9a-f]{16}/,
    );
    await assert.rejects(
      pipeline(
        Readable.from([bytes, Buffer.from('x')]),
        createVerifyingStream(expected, 'shard'),
        sink(),
      ),
      /more than the expected/,
    );
  });
});
