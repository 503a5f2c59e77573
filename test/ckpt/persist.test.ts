import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { persistStep, readRecord, stepStatus, verifyStep } from '../../src/ckpt/index.ts';
import { flipByte, tempDir, writeStep } from './helpers.ts';

const dir = tempDir('persist');
let n = 0;
const fresh = (): { l1a: string; l1b: string; l3: string } => {
  const base = join(dir, `case-${n++}`);
  return { l1a: join(base, 'a', 'L1'), l1b: join(base, 'b', 'L1'), l3: join(base, 'L3') };
};

describe('persistStep', () => {
  test('a committed L1 step is copied to L3 with records naming the step directory, then committed', async () => {
    const { l1a, l3 } = fresh();
    await writeStep(l1a, 'job', 4, { worldSize: 2, level: 'L1', slot: 0 });
    const result = await persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' });
    assert.deepEqual(result.copied, [0, 1]);
    assert.equal(result.commit.kind, 'committed');
    const record = await readRecord(l3, 'job', 4, 1);
    assert.equal(
      record.kind === 'valid' && record.value.file,
      'step-0000000004/rank-00001.safetensors',
    );
    assert.equal((await verifyStep(l3, 'job', 4, { level: 'L3' })).ok, true);
  });

  test('the L3 manifest appears only when the last node has persisted its ranks', async () => {
    const { l1a, l1b, l3 } = fresh();
    await writeStep(l1a, 'job', 4, { worldSize: 2, ranks: [0], level: 'L1', slot: 0, node: 'a' });
    await writeStep(l1b, 'job', 4, { worldSize: 2, ranks: [1], level: 'L1', slot: 0, node: 'b' });
    const first = await persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' });
    assert.equal(first.commit.kind, 'incomplete');
    assert.equal(existsSync(join(l3, 'job', 'step-0000000004', 'manifest.json')), false);
    const second = await persistStep(l1b, l3, 'job', 4, { from: 'L1', to: 'L3' });
    assert.equal(second.commit.kind, 'committed');
    assert.equal((await stepStatus(l3, 'job', 4, { level: 'L3' })).state, 'complete');
  });

  test('persisting again skips shards already there', async () => {
    const { l1a, l3 } = fresh();
    await writeStep(l1a, 'job', 4, { worldSize: 1, level: 'L1', slot: 0 });
    await persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' });
    const again = await persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' });
    assert.deepEqual(again.skipped, [0]);
    assert.equal(again.commit.kind, 'already-committed');
  });

  test('a corrupt source shard is refused while streaming and nothing of it reaches L3', async () => {
    const { l1a, l3 } = fresh();
    await writeStep(l1a, 'job', 4, { worldSize: 2, level: 'L1', slot: 0 });
    flipByte(join(l1a, 'job', 'slots', 'rank-00001', 'slot-0.safetensors'));
    await assert.rejects(persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' }), (e: unknown) => {
      assert.ok(e instanceof CubeError);
      assert.match(e.message, /rank 1's shard .*slot-0\.safetensors does not match its manifest/);
      return true;
    });
    assert.deepEqual(readdirSync(join(l3, 'job', 'step-0000000004')).sort(), [
      'rank-00000.json',
      'rank-00000.safetensors',
    ]);
  });

  test('an uncommitted source step is not persisted', async () => {
    const { l1a, l3 } = fresh();
    await writeStep(l1a, 'job', 4, { worldSize: 1, level: 'L1', slot: 0, commit: false });
    await assert.rejects(
      persistStep(l1a, l3, 'job', 4, { from: 'L1', to: 'L3' }),
      /cannot persist step 4 of job .*: it is uncommitted/,
    );
  });
});
