// The L3 fence with real files: an attempt's launch raises it, and from then on an older
// attempt (a partitioned node that kept training) can neither commit nor leave files at L3.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  collectGarbage,
  isFenced,
  persistStep,
  raiseFence,
  readFence,
  scanJob,
  stepStatus,
  tryCommit,
  type DurableStore,
} from '../../src/ckpt/index.ts';
import { asStore } from '../../src/ckpt/fs-store.ts';
import { fenceKey } from '../../src/ckpt/fence.ts';
import { python, repoRoot, tempDir, writeStep } from './helpers.ts';
import { spawnSync } from 'node:child_process';

const dir = tempDir('fence');
let n = 0;
const fresh = (): { l1: string; l1b: string; l3: string } => {
  const base = join(dir, `case-${n++}`);
  return { l1: join(base, 'a', 'L1'), l1b: join(base, 'b', 'L1'), l3: join(base, 'L3') };
};
const stepDir = (l3: string, step: number): string =>
  join(l3, 'job', `step-${String(step).padStart(10, '0')}`);

describe('the L3 fence', () => {
  test('is raised atomically, private, and never lowered', async () => {
    const { l3 } = fresh();
    assert.equal(await readFence(l3, 'job'), null);
    assert.equal((await raiseFence(l3, 'job', 2)).attempt, 2);
    assert.equal(
      (await raiseFence(l3, 'job', 1)).attempt,
      2,
      'a late, older launch lowers nothing',
    );
    assert.equal((await raiseFence(l3, 'job', 5)).attempt, 5);
    assert.equal((await readFence(l3, 'job'))?.attempt, 5);
    assert.equal(statSync(join(l3, 'job', 'fence.json')).mode & 0o777, 0o600);
    // Only the fence and no temp file is left in the job directory.
    assert.deepEqual(readdirSync(join(l3, 'job')), ['fence.json']);
  });

  test('concurrent raises leave the highest attempt in force', async () => {
    const { l3 } = fresh();
    await Promise.all([3, 7, 1, 6, 2].map((a) => raiseFence(l3, 'job', a)));
    assert.equal((await readFence(l3, 'job'))?.attempt, 7);
  });

  test('a fence file that does not parse is an error, not "no fence"', async () => {
    const { l3 } = fresh();
    mkdirSync(join(l3, 'job'), { recursive: true });
    writeFileSync(join(l3, 'job', 'fence.json'), '{"attempt": ');
    await assert.rejects(readFence(l3, 'job'), /the fence .*fence\.json is not JSON/);
  });

  test('the fence file is neither a step nor garbage to the scanner and the collector', async () => {
    const { l3 } = fresh();
    await writeStep(l3, 'job', 4, { worldSize: 1, timeline: 1 });
    await raiseFence(l3, 'job', 1);
    assert.deepEqual(
      (await scanJob(l3, 'job', { level: 'L3' })).map((s) => s.step),
      [4],
    );
    await collectGarbage({ L3: l3 }, 'job', { keep: { L3: 1 } });
    assert.equal((await readFence(l3, 'job'))?.attempt, 1);
  });
});

describe('commits under the fence', () => {
  test('tryCommit refuses an L3 manifest of a timeline below the fence and accepts the fenced-in attempt', async () => {
    const { l3 } = fresh();
    await writeStep(l3, 'job', 6, { worldSize: 2, timeline: 1, commit: false });
    await raiseFence(l3, 'job', 2);
    await assert.rejects(
      tryCommit(l3, 'job', 6, { level: 'L3', expectRanks: [0, 1] }),
      (e: unknown) => {
        assert.ok(isFenced(e), String(e));
        assert.match(
          String(e),
          /step 6 of job \(timeline 1\) is fenced at .*fence\.json: attempt 2/,
        );
        return true;
      },
    );
    assert.equal(existsSync(join(stepDir(l3, 6), 'manifest.json')), false);
    await writeStep(l3, 'job', 8, { worldSize: 2, timeline: 2, commit: false });
    const ok = await tryCommit(l3, 'job', 8, { level: 'L3', expectRanks: [0, 1] });
    assert.equal(ok.kind, 'committed');
  });

  test('L1 and L2 commits are not fenced: they stay on the old attempt’s node', async () => {
    const { l1 } = fresh();
    await raiseFence(l1, 'job', 9);
    await writeStep(l1, 'job', 2, { worldSize: 1, timeline: 0, level: 'L1', slot: 0 });
    assert.equal((await stepStatus(l1, 'job', 2, { level: 'L1' })).state, 'complete');
  });

  test('a fenced attempt’s persist writes nothing at L3, so it cannot replace the newer attempt’s shards of the same step', async () => {
    const { l1, l1b, l3 } = fresh();
    // The newer attempt (timeline 3) has persisted step 10; the fence says attempt 3.
    await writeStep(l1b, 'job', 10, { worldSize: 1, timeline: 3, level: 'L1', slot: 0 });
    await raiseFence(l3, 'job', 3);
    await persistStep(l1b, l3, 'job', 10, { from: 'L1', to: 'L3' });
    const before = statSync(join(stepDir(l3, 10), 'rank-00000.safetensors')).mtimeMs;
    // The old attempt (timeline 2), on a partitioned node, saved the same step number.
    await writeStep(l1, 'job', 10, { worldSize: 1, timeline: 2, level: 'L1', slot: 0 });
    await writeStep(l1, 'job', 12, { worldSize: 1, timeline: 2, level: 'L1', slot: 1 });
    for (const step of [10, 12])
      await assert.rejects(persistStep(l1, l3, 'job', step, { from: 'L1', to: 'L3' }), (e) =>
        isFenced(e),
      );
    assert.equal(existsSync(stepDir(l3, 12)), false, 'nothing of step 12 reached L3');
    assert.equal(statSync(join(stepDir(l3, 10), 'rank-00000.safetensors')).mtimeMs, before);
    const steps = await scanJob(l3, 'job', { level: 'L3' });
    assert.deepEqual(
      steps.map((s) => [s.step, s.manifest?.timeline]),
      [[10, 3]],
    );
  });

  test('a fence raised while a persist copies takes back what that persist wrote', async () => {
    const { l1, l3 } = fresh();
    await writeStep(l1, 'job', 14, { worldSize: 2, timeline: 1, level: 'L1', slot: 0 });
    await raiseFence(l3, 'job', 1);
    // The fence rises to 2 once the first shard has been put, as a launch elsewhere would.
    const inner = asStore(l3);
    let raised = false;
    const store: DurableStore = {
      ...inner,
      kind: inner.kind,
      locate: (k) => inner.locate(k),
      get: (k, o) => inner.get(k, o),
      head: (k) => inner.head(k),
      list: (p, o) => inner.list(p, o),
      delete: (k) => inner.delete(k),
      deletePrefix: (p) => inner.deletePrefix(p),
      freeBytes: () => inner.freeBytes(),
      put: async (key, body, options) => {
        const written = await inner.put(key, body, options);
        if (!raised && key.endsWith('.safetensors') && key !== fenceKey('job')) {
          raised = true;
          await raiseFence(inner, 'job', 2);
        }
        return written;
      },
    };
    await assert.rejects(persistStep(l1, store, 'job', 14, { from: 'L1', to: 'L3' }), (e) =>
      isFenced(e),
    );
    assert.deepEqual(readdirSync(stepDir(l3, 14)), [], 'records and shards taken back');
  });

  test('an old attempt’s refused steps make L3 retention delete nothing of the newer attempt’s', async () => {
    // Refused steps never commit at L3, so they never count as newer steps to keep.
    const { l1, l3 } = fresh();
    await raiseFence(l3, 'job', 1);
    await writeStep(l3, 'job', 2, { worldSize: 1, timeline: 1 });
    for (const step of [4, 6, 8]) {
      await writeStep(l1, 'job', step, { worldSize: 1, timeline: 0, level: 'L1', slot: step % 2 });
      await assert.rejects(persistStep(l1, l3, 'job', step, { from: 'L1', to: 'L3' }));
    }
    await collectGarbage({ L3: l3 }, 'job', { keep: { L3: 1 } });
    assert.deepEqual(
      (await scanJob(l3, 'job', { level: 'L3' })).map((s) => s.step),
      [2],
    );
  });

  test('the Python client’s local L3 commit refuses a fenced step and leaves nothing of it', () => {
    const { l1, l3 } = fresh();
    mkdirSync(join(l3, 'job'), { recursive: true, mode: 0o700 });
    const script = `
import os, sys, json, torch, warnings
sys.path.insert(0, ${JSON.stringify(join(repoRoot, 'python'))})
import cube
c = cube.Checkpointer(job="job", rank=0, world_size=1, local_ranks=[0], node="n", l1_dir=${JSON.stringify(l1)}, l3_dir=${JSON.stringify(l3)}, l3_every=1, every_steps=2, attempt=1)
c.save(2, {"w": torch.ones(4)})
c.wait()
with open(os.path.join(${JSON.stringify(l3)}, "job", "fence.json"), "w") as f:
    json.dump({"format": "cube.fence/1", "job": "job", "attempt": 2, "raisedAt": "2026-01-01T00:00:00Z"}, f)
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    c.save(4, {"w": torch.ones(4) * 2})
    c.wait()
print(json.dumps([e.code for e in c.errors()]))
c.close()
`;
    const r = spawnSync(python, ['-c', script], { encoding: 'utf8', env: { ...process.env } });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '[]'), ['INFEASIBLE']);
    assert.equal(existsSync(join(stepDir(l3, 2), 'manifest.json')), true, 'before the fence');
    assert.equal(existsSync(join(stepDir(l3, 4), 'manifest.json')), false);
    assert.deepEqual(existsSync(stepDir(l3, 4)) ? readdirSync(stepDir(l3, 4)) : [], []);
  });
});
