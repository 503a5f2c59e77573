// A node's checkpoint daemon under the L3 fence, with real files: the daemon of a replaced
// attempt (its node was cut off and its ranks kept saving) commits at L1 as before, but persists
// nothing to L3, reports why, and leaves L3 out of its garbage collection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCommitted, raiseFence, saveShard, scanJob } from '../../src/ckpt/index.ts';
import { CheckpointDaemon, type DaemonLog } from '../../src/ckpt/daemon/index.ts';
import { writeStep } from './helpers.ts';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

test('a fenced attempt’s daemon commits L1 but persists nothing to L3, says why, and collects no L3 garbage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-fence-daemon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const l1 = join(dir, 'node-a', 'L1');
  const l3 = join(dir, 'L3');
  // The newer attempt (1) runs elsewhere: it raised the fence and committed steps 2 and 4 at L3.
  await raiseFence(l3, 'job1', 1);
  for (const step of [2, 4]) await writeStep(l3, 'job1', step, { worldSize: 1, timeline: 1 });
  const daemon = new CheckpointDaemon({
    node: 'node-a',
    l1Root: l1,
    l2Root: join(dir, 'node-a', 'L2'),
    l3Root: l3,
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
  });
  await daemon.start();
  t.after(() => daemon.stop());
  // The old attempt (timeline 0) keeps saving on its cut-off node; its retention would keep
  // only the newest L3 step.
  daemon.register('job1', 0, { worldSize: 1, localRanks: [0], keep: { L3: 1 } });
  for (const step of [10, 12]) {
    await daemon.saved(
      await saveShard(l1, {
        job: 'job1',
        step,
        rank: 0,
        worldSize: 1,
        node: 'node-a',
        tensors: { 'model/w': { shape: [4], data: new Float32Array([step, 1, 2, 3]) } },
        extra: {},
        slot: (step / 2) % 2,
        timeline: 0,
      }),
    );
    await daemon.idle('job1');
  }
  const l1Steps = (await scanJob(l1, 'job1', { level: 'L1' })).filter(isCommitted);
  assert.deepEqual(
    l1Steps.map((s) => s.step),
    [10, 12],
    'L1 commits go on',
  );
  const l3Steps = await scanJob(l3, 'job1', { level: 'L3' });
  assert.deepEqual(
    l3Steps.map((s) => [s.step, s.state, s.manifest?.timeline]),
    [
      [2, 'complete', 1],
      [4, 'complete', 1],
    ],
    'nothing of steps 10 and 12 at L3, and the newer attempt’s steps kept',
  );
  assert.deepEqual(readdirSync(join(l3, 'job1')).sort(), [
    'fence.json',
    'step-0000000002',
    'step-0000000004',
  ]);
  const status = daemon.status()[0];
  assert.equal(status?.newest.L3, null);
  assert.deepEqual(
    status?.errors.map((e) => [e.level, e.step]),
    [
      ['L3', 10],
      ['L3', 12],
    ],
  );
  assert.match(
    status?.errors[0]?.message ?? '',
    /step 10 of job1 \(timeline 0\) is fenced at .*fence\.json: attempt 1/,
  );
});
