import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  FsDurableStore,
  manifestSchema,
  readManifest,
  tryCommit,
  type CommitResult,
} from '../../src/ckpt/index.ts';
import { flipByte, recordingStore, repoRoot, tempDir, writeStep } from './helpers.ts';

const dir = tempDir('commit');
let n = 0;
const freshRoot = (): string => join(dir, `root-${n++}`);
const manifestPath = (root: string, step: number): string =>
  join(root, 'job', `step-${String(step).padStart(10, '0')}`, 'manifest.json');

function gapKinds(result: CommitResult): string[] {
  assert.equal(result.kind, 'incomplete');
  return result.kind === 'incomplete' ? result.gaps.map((g) => `${g.rank}:${g.kind}`) : [];
}

describe('tryCommit', () => {
  test('the manifest is written last, after every shard and record', async () => {
    const { store, log } = recordingStore(new FsDurableStore(freshRoot()));
    await writeStep(store, 'job', 10, { worldSize: 2, commit: false });
    const result = await tryCommit(store, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.equal(result.kind, 'committed');
    assert.deepEqual(log, [
      'put job/step-0000000010/rank-00000.safetensors',
      'put job/step-0000000010/rank-00000.json',
      'put job/step-0000000010/rank-00001.safetensors',
      'put job/step-0000000010/rank-00001.json',
      'put job/step-0000000010/manifest.json',
    ]);
  });

  test('a missing record keeps the step uncommitted: no manifest', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, ranks: [0], commit: false });
    const result = await tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.deepEqual(gapKinds(result), ['1:record-missing']);
    assert.equal(existsSync(manifestPath(root, 10)), false);
  });

  test('records of two timelines never make a manifest: the older is named as a mismatch', async () => {
    // Issue 13, finding 5: rank 1's record is left from a run that restarted from an older step.
    const root = freshRoot();
    await writeStep(root, 'job', 10, {
      worldSize: 2,
      commit: false,
      timeline: (rank) => (rank === 0 ? 3 : 2),
    });
    const result = await tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.deepEqual(gapKinds(result), ['1:timeline-mismatch']);
    assert.equal(existsSync(manifestPath(root, 10)), false);
  });

  test('the manifest carries the timeline of its records', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, timeline: 4 });
    const read = await readManifest(root, 'job', 10);
    assert.equal(read.kind === 'valid' && read.value.timeline, 4);
  });

  test('a record whose shard file is gone keeps the step uncommitted', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, commit: false });
    rmSync(join(root, 'job', 'step-0000000010', 'rank-00001.safetensors'));
    const result = await tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.deepEqual(gapKinds(result), ['1:shard-missing']);
    assert.equal(existsSync(manifestPath(root, 10)), false);
  });

  test('a shard whose size differs from its record keeps the step uncommitted', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, commit: false });
    appendFileSync(join(root, 'job', 'step-0000000010', 'rank-00000.safetensors'), 'x');
    const result = await tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.deepEqual(gapKinds(result), ['0:size-mismatch']);
    assert.equal(existsSync(manifestPath(root, 10)), false);
  });

  test('with verifyChecksums a corrupt shard of the right size keeps the step uncommitted', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, commit: false });
    flipByte(join(root, 'job', 'step-0000000010', 'rank-00001.safetensors'));
    const result = await tryCommit(root, 'job', 10, {
      level: 'L3',
      expectRanks: [0, 1],
      verifyChecksums: true,
    });
    assert.deepEqual(gapKinds(result), ['1:checksum-mismatch']);
  });

  test('once complete, the manifest lists every shard with its size, checksum and extra state', async () => {
    const root = freshRoot();
    const records = await writeStep(root, 'job', 10, { worldSize: 2, commit: false });
    const result = await tryCommit(root, 'job', 10, {
      level: 'L3',
      expectRanks: [1, 0],
      layout: { tp: 2, pp: 1, dp: 1 },
    });
    assert.equal(result.kind, 'committed');
    const read = await readManifest(root, 'job', 10, { level: 'L3' });
    assert.equal(read.kind, 'valid');
    if (read.kind !== 'valid') return;
    // committedAt is the newest savedAt: every committer writes the same bytes.
    assert.equal(read.value.committedAt, [...records.map((r) => r.savedAt)].sort().at(-1));
    assert.deepEqual(read.value.layout, { tp: 2, pp: 1, dp: 1 });
    assert.deepEqual(
      read.value.shards,
      records.map((r) => ({
        rank: r.rank,
        file: r.file,
        bytes: r.bytes,
        xxh3: r.xxh3,
        node: r.node,
        extra: r.extra,
      })),
    );
  });

  test('committing again finds the manifest already there and writes nothing', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2 });
    const { store, log } = recordingStore(new FsDurableStore(root));
    const again = await tryCommit(store, 'job', 10, { level: 'L3', expectRanks: [0, 1] });
    assert.equal(again.kind, 'already-committed');
    assert.deepEqual(log, []);
  });

  test('concurrent committers in one process all succeed and leave one valid manifest', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 4, commit: false });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0, 1, 2, 3] }),
      ),
    );
    for (const r of results) assert.notEqual(r.kind, 'incomplete');
    const read = await readManifest(root, 'job', 10, { level: 'L3' });
    assert.equal(read.kind, 'valid');
    assert.deepEqual(
      readdirSync(join(root, 'job', 'step-0000000010')).filter((f) => f.startsWith('.')),
      [],
      'no temp files remain',
    );
  });

  test('concurrent committers in separate processes leave one valid manifest', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 4, commit: false });
    const code = `import { tryCommit } from ${JSON.stringify(join(repoRoot, 'src/ckpt/index.ts'))};
      const r = await tryCommit(${JSON.stringify(root)}, 'job', 10, { level: 'L3', expectRanks: [0, 1, 2, 3] });
      console.log(r.kind);`;
    const kinds = await Promise.all(
      Array.from(
        { length: 2 },
        () =>
          new Promise<string>((resolve, reject) =>
            execFile(
              process.execPath,
              ['--import', 'tsx', '--input-type=module', '-e', code],
              { cwd: repoRoot },
              (error, stdout) =>
                error === null ? resolve(stdout.trim()) : reject(new Error(error.message)),
            ),
          ),
      ),
    );
    for (const k of kinds) assert.ok(k === 'committed' || k === 'already-committed', k);
    const read = await readManifest(root, 'job', 10, { level: 'L3' });
    assert.equal(read.kind, 'valid');
    if (read.kind === 'valid') assert.ok(manifestSchema.safeParse(read.value).success);
  });

  test('an L3 commit that does not expect every rank is refused', async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 2, commit: false });
    await assert.rejects(
      tryCommit(root, 'job', 10, { level: 'L3', expectRanks: [0] }),
      /an L3 manifest lists every rank/,
    );
  });

  test("an L1 commit lists just the node's ranks", async () => {
    const root = freshRoot();
    await writeStep(root, 'job', 10, { worldSize: 4, ranks: [2, 3], commit: false, slot: 0 });
    const result = await tryCommit(root, 'job', 10, { level: 'L1', expectRanks: [2, 3] });
    assert.equal(result.kind, 'committed');
    if (result.kind === 'committed')
      assert.deepEqual(
        result.manifest.shards.map((s) => s.file),
        ['slots/rank-00002/slot-0.safetensors', 'slots/rank-00003/slot-0.safetensors'],
      );
  });
});
