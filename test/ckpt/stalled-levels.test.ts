// `cube ckpt verify` fails on a level that stopped committing (issue 14: L3 filled with
// uncommitted steps from 480 to 750 while its newest checkpoint stayed at 450, and verify said ok).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { findStalledLevels, scanJob } from '../../src/ckpt/index.ts';
import { cube, cubeInProcess as run, tempDir, writeStep } from './helpers.ts';

const dir = tempDir('stalled');

/**
 * A two-rank job: L1 holds `l1` (complete, slots), L3 the complete steps `l3` and, above them,
 * `pending` steps that only rank `pendingRank` reached (no manifest).
 */
async function jobDir(
  name: string,
  layout: { l1: number[]; l3: number[]; pending: number[]; pendingRank?: number },
): Promise<string> {
  const base = join(dir, name);
  for (const [i, step] of layout.l1.entries())
    await writeStep(join(base, 'L1'), 'gpt', step, { worldSize: 2, level: 'L1', slot: i % 2 });
  for (const step of layout.l3) await writeStep(join(base, 'L3'), 'gpt', step, { worldSize: 2 });
  for (const [i, step] of layout.pending.entries())
    // The pattern: nodes persisting different steps, so each step has one rank only.
    await writeStep(join(base, 'L3'), 'gpt', step, {
      worldSize: 2,
      ranks: [layout.pendingRank ?? i % 2],
      commit: false,
    });
  return base;
}

interface StalledJson {
  level: string;
  newestCommitted: number | null;
  pendingSteps: number[];
  newestElsewhere: number | null;
  lagSteps: number | null;
  intervalSteps: number | null;
  message: string;
}

test('verify reports an L3 that stopped committing, with the numbers, and exits 1', async () => {
  const pending = Array.from({ length: 10 }, (_, i) => 480 + 30 * i);
  const base = await jobDir('issue', { l1: [740, 750], l3: [420, 450], pending });
  const r = await cube('ckpt', 'verify', base, '--json');
  assert.equal(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; stalled: StalledJson[] };
  assert.equal(out.ok, false);
  assert.deepEqual(
    out.stalled.map(({ message: _, ...numbers }) => numbers),
    [
      {
        level: 'L3',
        newestCommitted: 450,
        pendingSteps: pending,
        newestElsewhere: 750,
        lagSteps: 300,
        intervalSteps: 30,
      },
    ],
  );
  assert.match(
    r.stderr,
    /L3 stalled: newest committed step 450, 10 newer steps never committed \(480\.\.750\); 300 steps behind step 750 at another level \(interval 30, allowed 60\)/,
  );
  const text = await run('ckpt', 'verify', base);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /L3 stalled: newest committed step 450/);
  // The shards themselves are fine: only the cadence is broken.
  assert.doesNotMatch(text.stdout, /BAD/);
  const ls = await run('ckpt', 'ls', base);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /stalled .*\n {2}L3 stalled: newest committed step 450/);
});

test('one pending step far behind the other levels is a stall too', async () => {
  const base = await jobDir('lag', { l1: [190, 200], l3: [20, 40], pending: [60] });
  const r = await run('ckpt', 'verify', base);
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /L3 stalled: newest committed step 40, 1 newer step never committed \(60\); 160 steps behind step 200 at another level \(interval 20, allowed 40\)/,
  );
});

test('a healthy directory with the next L3 step in flight still verifies ok', async () => {
  const base = await jobDir('healthy', { l1: [60, 65], l3: [20, 40], pending: [60] });
  const r = await run('ckpt', 'verify', base, '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ok: boolean; stalled: StalledJson[] };
  assert.deepEqual([out.ok, out.stalled], [true, []]);
  const ls = await run('ckpt', 'ls', base);
  assert.doesNotMatch(ls.stdout, /L3 stalled|stopped committing/);
});

test('more pending steps than allowed above a level with no checkpoint at all is a stall', async () => {
  const base = await jobDir('never', {
    l1: [30, 40],
    l3: [],
    pending: [10, 20, 30],
    pendingRank: 0,
  });
  const statuses = [
    ...(await scanJob(join(base, 'L1'), 'gpt', { level: 'L1' })),
    ...(await scanJob(join(base, 'L3'), 'gpt', { level: 'L3' })),
  ];
  const [stalled] = findStalledLevels(statuses);
  assert.deepEqual(
    [stalled?.level, stalled?.newestCommitted, stalled?.pendingSteps],
    ['L3', null, [10, 20, 30]],
  );
  assert.deepEqual(findStalledLevels(statuses, { maxPendingSteps: 3 }), []);
});
