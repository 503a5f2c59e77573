import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  collectGarbage,
  deleteStep,
  FsDurableStore,
  LeaseRegistry,
  listSteps,
  planRetention,
  type Level,
  type RetentionDecision,
  type StepState,
  type StepStatus,
} from '../../src/ckpt/index.ts';
import { recordingStore, tempDir, writeStep } from './helpers.ts';

function status(
  level: Level,
  step: number,
  state: StepState,
  timeline: number | null = 0,
): StepStatus {
  return {
    job: 'job',
    step,
    level,
    location: '',
    state,
    complete: state === 'complete',
    worldSize: 1,
    timeline,
    ranks: [],
    shards: [],
    bytes: 0,
    manifest: null,
    problems: [],
  };
}

function summary(decisions: readonly RetentionDecision[], level: Level): string[] {
  return decisions
    .filter((d) => d.level === level)
    .map((d) => `${d.step}:${d.kind === 'keep' ? `keep(${d.reason})` : `delete(${d.reason})`}`);
}

describe('planRetention', () => {
  test('each level keeps its newest k complete steps and deletes older ones', () => {
    const decisions = planRetention(
      { L3: [1, 2, 3, 4, 5].map((s) => status('L3', s, 'complete')) },
      { keep: { L3: 3 } },
    );
    assert.deepEqual(summary(decisions, 'L3'), [
      '5:keep(newest-complete)',
      '4:keep(within-keep)',
      '3:keep(within-keep)',
      '2:delete(beyond-keep)',
      '1:delete(beyond-keep)',
    ]);
  });

  test("a restarted run's steps count as newer than an abandoned run's larger step numbers", () => {
    // A peer missed the prune: it still holds steps 40 and 50 of timeline 0, while the run that
    // restarted from step 30 (timeline 1) replicates 32, 34 and has 36 in flight (no record yet).
    const decisions = planRetention(
      {
        L2: [
          status('L2', 40, 'complete', 0),
          status('L2', 50, 'complete', 0),
          status('L2', 32, 'complete', 1),
          status('L2', 34, 'complete', 1),
          status('L2', 36, 'uncommitted', null),
        ],
      },
      { keep: { L2: 2 } },
    );
    assert.deepEqual(summary(decisions, 'L2'), [
      '36:keep(in-flight)',
      '34:keep(newest-complete)',
      '32:keep(within-keep)',
      '50:delete(beyond-keep)',
      '40:delete(beyond-keep)',
    ]);
  });

  test('the newest complete step is kept even when keep would delete it', () => {
    const decisions = planRetention(
      { L2: [1, 2].map((s) => status('L2', s, 'complete')) },
      { keep: { L2: 0 } },
    );
    assert.deepEqual(summary(decisions, 'L2'), [
      '2:keep(newest-complete)',
      '1:delete(beyond-keep)',
    ]);
  });

  test("no level deletes another level's newest complete step", () => {
    // L3 lags behind: its newest complete step is 2, which L1 would otherwise drop.
    const decisions = planRetention(
      {
        L1: [2, 3, 4].map((s) => status('L1', s, 'partial')),
        L3: [1, 2].map((s) => status('L3', s, 'complete')),
      },
      { keep: { L1: 1, L3: 1 } },
    );
    assert.deepEqual(summary(decisions, 'L1'), [
      '4:keep(newest-complete)',
      '3:delete(beyond-keep)',
      '2:keep(newest-complete)',
    ]);
    assert.deepEqual(summary(decisions, 'L3'), [
      '2:keep(newest-complete)',
      '1:delete(beyond-keep)',
    ]);
  });

  test('a leased step is never deleted', () => {
    const decisions = planRetention(
      { L3: [1, 2, 3].map((s) => status('L3', s, 'complete')) },
      { keep: { L3: 1 }, isLeased: (step) => step === 1 },
    );
    assert.deepEqual(summary(decisions, 'L3'), [
      '3:keep(newest-complete)',
      '2:delete(beyond-keep)',
      '1:keep(leased)',
    ]);
  });

  test('a step newer than the newest complete one is in flight and never deleted', () => {
    const decisions = planRetention(
      {
        L3: [
          status('L3', 1, 'uncommitted'),
          status('L3', 2, 'complete'),
          status('L3', 3, 'invalid'),
          status('L3', 4, 'uncommitted'),
        ],
      },
      { keep: { L3: 1 } },
    );
    assert.deepEqual(summary(decisions, 'L3'), [
      '4:keep(in-flight)',
      '3:keep(in-flight)',
      '2:keep(newest-complete)',
      '1:delete(abandoned)',
    ]);
  });

  test('with no complete step at a level nothing there is deleted', () => {
    const decisions = planRetention({
      L2: [status('L2', 1, 'invalid'), status('L2', 2, 'uncommitted')],
    });
    assert.ok(decisions.every((d) => d.kind === 'keep' && d.reason === 'in-flight'));
  });
});

describe('collectGarbage', () => {
  const dir = tempDir('gc');
  let n = 0;

  test('deleting a step removes the manifest first, then records, then shards, then the directory', async () => {
    const root = join(dir, `root-${n++}`);
    await writeStep(root, 'job', 1, { worldSize: 2 });
    const { store, log } = recordingStore(new FsDurableStore(root));
    await deleteStep(store, 'job', 1);
    assert.deepEqual(log, [
      'delete job/step-0000000001/manifest.json',
      'delete job/step-0000000001/rank-00000.json',
      'delete job/step-0000000001/rank-00001.json',
      'delete job/step-0000000001/rank-00000.safetensors',
      'delete job/step-0000000001/rank-00001.safetensors',
      'deletePrefix job/step-0000000001/',
    ]);
    assert.equal(existsSync(join(root, 'job', 'step-0000000001')), false);
  });

  test('GC over real roots keeps k, the leased step and the in-flight step, and deletes the rest', async () => {
    const root = join(dir, `root-${n++}`);
    for (const step of [1, 2, 3, 4]) await writeStep(root, 'job', step, { worldSize: 1 });
    await writeStep(root, 'job', 5, { worldSize: 1, commit: false });
    const leases = new LeaseRegistry();
    const release = leases.acquire('job', 1);
    const gc = await collectGarbage({ L3: root }, 'job', { keep: { L3: 2 }, leases });
    assert.deepEqual(gc.deleted, [{ level: 'L3', step: 2 }]);
    assert.deepEqual(await listSteps(root, 'job'), [1, 3, 4, 5]);
    release();
    release(); // a second release is harmless
    await collectGarbage({ L3: root }, 'job', { keep: { L3: 2 }, leases });
    assert.deepEqual(await listSteps(root, 'job'), [3, 4, 5]);
  });

  test('GC at L1 deletes step directories but never the slots', async () => {
    const root = join(dir, `root-${n++}`);
    for (const step of [1, 2, 3])
      await writeStep(root, 'job', step, { worldSize: 1, level: 'L1', slot: step % 2 });
    const gc = await collectGarbage({ L1: root }, 'job', { keep: { L1: 2 } });
    assert.deepEqual(gc.deleted, [{ level: 'L1', step: 1 }]);
    assert.deepEqual(readdirSync(join(root, 'job', 'slots', 'rank-00000')).sort(), [
      'slot-0.safetensors',
      'slot-1.safetensors',
    ]);
  });

  test('a dry run deletes nothing', async () => {
    const root = join(dir, `root-${n++}`);
    for (const step of [1, 2]) await writeStep(root, 'job', step, { worldSize: 1 });
    const gc = await collectGarbage({ L3: root }, 'job', { keep: { L3: 1 }, dryRun: true });
    assert.deepEqual(gc.deleted, []);
    assert.ok(gc.decisions.some((d) => d.kind === 'delete' && d.step === 1));
    assert.deepEqual(await listSteps(root, 'job'), [1, 2]);
  });

  test('leases count holders: a step stays leased until every holder releases', () => {
    const leases = new LeaseRegistry();
    const a = leases.acquire('job', 7);
    const b = leases.acquire('job', 7);
    a();
    assert.equal(leases.isHeld('job', 7), true);
    b();
    assert.equal(leases.isHeld('job', 7), false);
    assert.deepEqual(leases.heldSteps('job'), []);
  });
});
