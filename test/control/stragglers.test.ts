import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stragglerPolicyOf, validateJobSpec } from '../../src/control/model/index.ts';
import { CubeError } from '../../src/core/index.ts';
import {
  StragglerDetector,
  type StragglerFinding,
} from '../../src/control/orchestrator/stragglers.ts';

const policy = { slowdown: 1.5, windowSteps: 20 };

/**
 * Feeds `steps` steps of every rank, in lock step, each rank reporting its own step time
 * `stepTimeS(rank, step)`; returns the findings in order.
 */
function run(
  detector: StragglerDetector,
  options: {
    ranks: number;
    from?: number;
    steps: number;
    stepTimeS: (rank: number, step: number) => number;
  },
): StragglerFinding[] {
  const findings: StragglerFinding[] = [];
  const from = options.from ?? 1;
  for (let step = from; step < from + options.steps; step++)
    for (let rank = 0; rank < options.ranks; rank++) {
      const f = detector.observe({
        rank,
        step,
        atMs: step * 100,
        stepTimeS: options.stepTimeS(rank, step),
      });
      if (f !== null) findings.push(f);
    }
  return findings;
}

describe('straggler detection', () => {
  test('a rank persistently slower than the others is found once, with its evidence', () => {
    const d = new StragglerDetector(policy);
    const findings = run(d, {
      ranks: 4,
      steps: 60,
      stepTimeS: (rank) => (rank === 2 ? 0.3 : 0.1),
    });
    assert.equal(findings.length, 1, 'one finding, not one per report');
    const f = findings[0]!;
    assert.equal(f.rank, 2);
    assert.equal(f.stepTimeS, 0.3);
    assert.equal(f.gangMedianS, 0.1);
    assert.ok(Math.abs(f.ratio - 3) < 1e-9);
    assert.equal(f.windowSteps, 20);
    // Found as soon as its history covers a whole window: steps 1 to 20.
    assert.deepEqual(f.steps, [1, 20]);
    assert.equal(f.samples, 20);
    assert.deepEqual(d.straggling, [2]);
  });

  test('a blip of a few slow steps is not a straggler', () => {
    const d = new StragglerDetector(policy);
    const findings = run(d, {
      ranks: 3,
      steps: 80,
      // Rank 1 is 10 times slower for 5 steps of every 20: a quarter of any window.
      stepTimeS: (rank, step) => (rank === 1 && step % 20 < 5 ? 1.0 : 0.1),
    });
    assert.deepEqual(findings, []);
  });

  test('a slowdown under the threshold is not a straggler', () => {
    const d = new StragglerDetector(policy);
    const findings = run(d, {
      ranks: 3,
      steps: 60,
      stepTimeS: (rank) => (rank === 0 ? 0.14 : 0.1),
    });
    assert.deepEqual(findings, []);
  });

  test('a rank that recovers and slows down again is reported again, and only then', () => {
    const d = new StragglerDetector(policy);
    const slowFrom = (ranges: [number, number][]) => (rank: number, step: number) =>
      rank === 1 && ranges.some(([a, b]) => step >= a && step <= b) ? 0.25 : 0.1;
    // Slow on steps 1-60, fast on 61-120, slow again on 121-180.
    const stepTimeS = slowFrom([
      [1, 60],
      [121, 180],
    ]);
    const first = run(d, { ranks: 3, steps: 100, stepTimeS });
    assert.equal(first.length, 1);
    assert.deepEqual(first[0]!.steps, [1, 20]);
    assert.deepEqual(d.straggling, [], 'recovered within the fast stretch');
    const second = run(d, { ranks: 3, from: 101, steps: 80, stepTimeS });
    assert.equal(second.length, 1, 'reported again once slow for a whole window anew');
    assert.equal(second[0]!.rank, 1);
    // The median says slow once more than half of a fresh window is slow: steps 121 to 130.
    const [from, to] = second[0]!.steps;
    assert.ok(from > 60 && to >= 130, `window ${from}-${to} after the recovery`);
  });

  test('in a gang of two, the slow rank is measured against the other rank, not a mean with itself', () => {
    const d = new StragglerDetector(policy);
    // 0.16 against 0.1 is a slowdown of 1.6; against the gang's mean (0.13) it would be 1.23.
    const findings = run(d, {
      ranks: 2,
      steps: 40,
      stepTimeS: (rank) => (rank === 1 ? 0.16 : 0.1),
    });
    assert.equal(findings.length, 1);
    assert.equal(findings[0]!.rank, 1);
    assert.equal(findings[0]!.gangMedianS, 0.1);
    assert.ok(Math.abs(findings[0]!.ratio - 1.6) < 1e-9);
  });

  test('in a gang of 1,000 ranks the one slow rank is found, and only it', () => {
    const d = new StragglerDetector(policy);
    const started = performance.now();
    const findings = run(d, {
      ranks: 1000,
      steps: 40,
      stepTimeS: (rank, step) => (rank === 617 ? 0.2 : 0.1 + ((rank * 7 + step) % 10) / 1000),
    });
    const ms = performance.now() - started;
    assert.deepEqual(
      findings.map((f) => f.rank),
      [617],
    );
    // 40,000 reports: a sort per report would take seconds here.
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms for 40,000 reports`);
  });

  test('a rank alone has no gang to be slower than', () => {
    const d = new StragglerDetector(policy);
    assert.deepEqual(run(d, { ranks: 1, steps: 60, stepTimeS: () => 5 }), []);
  });

  test('without reported step times, they are derived from the reports, coalesced or missing', () => {
    const d = new StragglerDetector(policy);
    const findings: StragglerFinding[] = [];
    // Reports arrive every 250 ms, coalesced: rank 0 advances 10 steps (25 ms a step), rank 1
    // 4 (62.5 ms a step); every third report of rank 0 and every fifth of rank 1 is lost.
    for (let tick = 1; tick <= 40; tick++) {
      const atMs = tick * 250;
      if (tick % 3 !== 0) {
        const f = d.observe({ rank: 0, step: tick * 10, atMs });
        if (f !== null) findings.push(f);
      }
      if (tick % 5 !== 0) {
        const f = d.observe({ rank: 1, step: tick * 4, atMs });
        if (f !== null) findings.push(f);
      }
    }
    assert.equal(findings.length, 1);
    const f = findings[0]!;
    assert.equal(f.rank, 1);
    assert.ok(Math.abs(f.stepTimeS - 0.0625) < 1e-9, `rank 1's step time ${f.stepTimeS}`);
    assert.ok(Math.abs(f.gangMedianS - 0.025) < 1e-9, `rank 0's step time ${f.gangMedianS}`);
    assert.ok(f.samples >= 5, 'a window of coalesced reports reaches back to enough samples');
  });

  test('a repeated or overtaken report says nothing new', () => {
    const d = new StragglerDetector(policy);
    run(d, { ranks: 2, steps: 30, stepTimeS: () => 0.1 });
    // Rank 1 reports old steps as very slow: they are ignored, not taken as new samples.
    for (let step = 1; step <= 30; step++)
      assert.equal(d.observe({ rank: 1, step, atMs: 0, stepTimeS: 9 }), null);
    assert.deepEqual(d.straggling, []);
  });
});

describe('the straggler policy of a job spec', () => {
  const base = {
    name: 'j',
    command: ['true'],
    ranks: { nodes: 2, devicesPerNode: 1 },
    deviceType: 'cpu',
  };

  test('defaults to reporting a slowdown of 1.5 over 20 steps, also for a spec stored without one', () => {
    assert.deepEqual(stragglerPolicyOf(validateJobSpec(base)), {
      slowdown: 1.5,
      windowSteps: 20,
      action: 'report',
    });
    const partial = validateJobSpec({ ...base, faults: { straggler: { slowdown: 2 } } });
    assert.deepEqual(stragglerPolicyOf(partial), {
      slowdown: 2,
      windowSteps: 20,
      action: 'report',
    });
  });

  test('refuses a slowdown of 1 or less and names a misspelt key with its near miss', () => {
    assert.throws(
      () => validateJobSpec({ ...base, faults: { straggler: { slowdown: 1 } } }),
      (e: unknown) =>
        e instanceof CubeError &&
        (e.where as { path?: string }).path === 'faults.straggler.slowdown',
    );
    assert.throws(
      () => validateJobSpec({ ...base, faults: { straggler: { windowStep: 10 } } }),
      (e: unknown) => e instanceof CubeError && /did you mean "windowSteps"/.test(e.message),
    );
  });
});
