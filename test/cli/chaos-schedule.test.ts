import assert from 'node:assert/strict';
import { test } from 'node:test';
import { faultKinds } from '../../src/cli/chaos/fault-kinds.ts';
import { exponential, mulberry32 } from '../../src/cli/chaos/prng.ts';
import { planCampaign } from '../../src/cli/chaos/schedule.ts';
import { parseDuration, parseFaultKinds } from '../../src/cli/commands/chaos.ts';

const options = {
  seed: 42,
  kinds: faultKinds,
  meanIntervalSeconds: 60,
  durationSeconds: 20 * 60,
  worldSize: 4,
};

test('mulberry32 is pinned: seed 0 gives the same first outputs forever, so a seed names one campaign', () => {
  const random = mulberry32(0);
  // 1144304738 / 2^32 = 0.2664292..., the value usually quoted for mulberry32(0).
  assert.deepEqual(
    [random(), random(), random()].map((x) => Math.round(x * 4294967296)),
    [1144304738, 1416247, 958946056],
  );
});

test('the same seed plans the same campaign, another seed another one', () => {
  assert.deepEqual(planCampaign(options), planCampaign(options));
  assert.notDeepEqual(planCampaign(options), planCampaign({ ...options, seed: 43 }));
});

test('a campaign draws only the kinds it is given, and victims among the ranks', () => {
  const plan = planCampaign({ ...options, kinds: ['rank-kill', 'hang'], durationSeconds: 3600 });
  assert.ok(plan.length > 20);
  assert.deepEqual(new Set(plan.map((f) => f.kind)), new Set(['rank-kill', 'hang']));
  for (const f of plan)
    assert.ok(Number.isInteger(f.victimRank) && f.victimRank >= 0 && f.victimRank < 4);
});

test('faults are planned while their delays fit in the duration, with the mean interval', () => {
  const plan = planCampaign({ ...options, durationSeconds: 100_000 });
  const total = plan.reduce((s, f) => s + f.delaySeconds, 0);
  assert.ok(total <= 100_000 && total > 100_000 - 1000);
  const mean = total / plan.length;
  assert.ok(Math.abs(mean - 60) < 6, `mean interval ${mean}`);
  assert.deepEqual(
    plan.map((f) => f.index),
    plan.map((_, i) => i),
  );
  // A longer campaign plans the same first faults, then more.
  assert.deepEqual(
    planCampaign({ ...options, durationSeconds: 50_000 }),
    plan.slice(0, planCampaign({ ...options, durationSeconds: 50_000 }).length),
  );
});

test('exponential draws have the requested mean', () => {
  const random = mulberry32(9);
  let sum = 0;
  for (let i = 0; i < 20_000; i += 1) sum += exponential(random, 10);
  assert.ok(Math.abs(sum / 20_000 - 10) < 0.4);
});

test('an empty kind list and a bad kind are refused as bad flags', () => {
  assert.throws(() => planCampaign({ ...options, kinds: [] }), { code: 'BAD_FLAG' });
  assert.throws(() => parseFaultKinds('rank-kill,meteor'), /"meteor" is not a fault kind/);
  assert.deepEqual(parseFaultKinds('hang, partition'), ['hang', 'partition']);
});

test('durations are read in seconds, minutes and hours', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('20m'), 1200);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('45'), 45);
  assert.throws(() => parseDuration('soon'), { code: 'BAD_FLAG' });
});
