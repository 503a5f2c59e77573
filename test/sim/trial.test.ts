import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { simulateTrial, type TrialResult } from '../../src/sim/index.ts';
import { handPolicy, quietModel, smallJob } from './helpers.ts';

function sumLost(r: TrialResult): number {
  const l = r.lost;
  return (
    l.detection +
    l.restart +
    l.waiting +
    l.restore +
    l.recompute +
    l.checkpointStall +
    l.checkpointInterference
  );
}

describe('a single trial', () => {
  test('without failures, S steps take exactly S x step time plus one stall per snapshot', () => {
    // 600 steps = 6,000 s of training; snapshots at 60, 120, ..., 5,940 s (99 of them) stall 2 s
    // each before the 600th step ends.
    const horizonS = 600 * 10 + 99 * 2;
    const r = simulateTrial(smallJob, handPolicy, quietModel, { horizonS, seed: 1 });
    assert.equal(r.steps, 600);
    assert.ok(Math.abs(r.progressS - 6000) < 1e-6, `progress ${r.progressS}`);
    assert.ok(Math.abs(r.lost.checkpointStall - 198) < 1e-6);
    assert.equal(r.interruptions, 0);
    const short = simulateTrial(smallJob, handPolicy, quietModel, {
      horizonS: horizonS - 0.001,
      seed: 1,
    });
    assert.equal(short.steps, 599);
  });

  test('with no checkpoint cost, the run delivers exactly horizon / step time steps', () => {
    const free = {
      ...handPolicy,
      l1: { stallS: 0, restoreS: 0 },
      l2: null,
      l3: { every: 1, writeS: 0, slowdown: 0, blocking: false, restoreS: 0 },
    };
    const r = simulateTrial(smallJob, free, quietModel, { horizonS: 12_345 * 10, seed: 3 });
    assert.equal(r.steps, 12_345);
    assert.equal(r.goodput, 1);
  });

  test('one injected crash loses exactly detection + restart + restore + the work since the last checkpoint', () => {
    // Each cycle is 60 s of training + a 2 s stall, so at t = 1,000 the job has finished 16
    // cycles (t = 992, progress 960) and trained 8 s more: progress 968. The L2 replica of
    // step 960 was written 992-997; L3 holds 900 (the 15th snapshot, written 930-937).
    const r = simulateTrial(smallJob, handPolicy, quietModel, {
      horizonS: 5000,
      seed: 1,
      randomFailures: false,
      injected: [{ atS: 1000, cause: 'faulty-gpu', nodes: [1] }],
      trace: true,
    });
    assert.equal(r.interruptions, 1);
    assert.deepEqual(r.byCause, { 'faulty-gpu': 1 });
    assert.equal(r.lost.detection, 5);
    assert.equal(r.lost.restart, 1 + 2 + 10);
    assert.equal(r.lost.waiting, 0);
    assert.equal(r.lost.restore, 3);
    assert.ok(Math.abs(r.lost.recompute - 8) < 1e-9, `recompute ${r.lost.recompute}`);
    const entry = r.trace[0];
    assert.equal(entry?.restoreLevel, 'L2');
    assert.equal(entry?.restoredProgressS, 960);
    assert.equal(entry?.resumeAtS, 1021);
    assert.equal(r.humanInterventions, 0);
    // Everything not lost is progress.
    assert.ok(Math.abs(r.progressS + sumLost(r) - 5000) < 1e-6);
  });

  test('restore reads L1 after a software crash, L2 after a node loss, L3 when the L2 holder also failed', () => {
    const at = (nodes: number[]) =>
      simulateTrial(smallJob, handPolicy, quietModel, {
        horizonS: 2000,
        seed: 1,
        randomFailures: false,
        injected: [{ atS: 1000, cause: 'x', nodes }],
        trace: true,
      }).trace[0];
    assert.deepEqual(
      [at([])?.restoreLevel, at([])?.restoredProgressS, at([])?.resumeAtS],
      ['L1', 960, 1000 + 5 + 10 + 1],
    );
    // Nodes 0 and 1 keep their replicas on 2 and 3: both survive.
    assert.deepEqual([at([0, 1])?.restoreLevel, at([0, 1])?.restoredProgressS], ['L2', 960]);
    // Node 3 holds node 1's replica: with both gone only L3 (step 900) is complete.
    const both = at([1, 3]);
    assert.deepEqual([both?.restoreLevel, both?.restoredProgressS], ['L3', 900]);
    assert.equal(both?.resumeAtS, 1000 + 5 + 1 + 2 + 10 + 7);
  });

  test('a failure before the newest L2 write finishes falls back to the previous replica', () => {
    // At t = 995 the replication of position 960 s (written 992-997) is still running, so the
    // newest complete replica is the previous snapshot's, position 900 s.
    const r = simulateTrial(smallJob, handPolicy, quietModel, {
      horizonS: 2000,
      seed: 1,
      randomFailures: false,
      injected: [{ atS: 995, cause: 'x', nodes: [2] }],
      trace: true,
    });
    assert.equal(r.trace[0]?.restoreLevel, 'L2');
    assert.equal(r.trace[0]?.restoredProgressS, 900);
    assert.ok(Math.abs(r.lost.recompute - (963 - 900)) < 1e-9);
  });

  test('with no spare left the job waits for a repaired node and a human is counted', () => {
    const noSpares = { ...handPolicy, spareNodes: 0 };
    const r = simulateTrial(smallJob, noSpares, quietModel, {
      horizonS: 40_000,
      seed: 1,
      randomFailures: false,
      injected: [{ atS: 1000, cause: 'x', nodes: [1], repairHours: 2 }],
      trace: true,
    });
    assert.equal(r.humanInterventions, 1);
    // Detected at 1,005; the node is back from repair at 1,000 + 7,200.
    assert.ok(Math.abs(r.lost.waiting - (8200 - 1005)) < 1e-9);
    assert.equal(r.firstHumanS, 1000);
  });

  test('the same node failing again within the repeat window needs a human', () => {
    // One spare. Node slot 1 loses physical node 1 at 1,000 s (back from repair at 1,600 s) and
    // gets the spare; the spare fails at 2,000 s and slot 1 gets node 1 back; node 1 fails again
    // at 3,000 s, within the 1-hour repeat window of its first fault: a person must look.
    const r = simulateTrial(smallJob, { ...handPolicy, spareNodes: 1 }, quietModel, {
      horizonS: 40_000,
      seed: 1,
      randomFailures: false,
      injected: [1000, 2000, 3000].map((atS) => ({
        atS,
        cause: 'x',
        nodes: [1],
        repairHours: 1 / 6,
      })),
      trace: true,
    });
    assert.deepEqual(
      r.trace.map((e) => e.human),
      [false, false, true],
    );
    assert.equal(r.humanInterventions, 1);
    assert.equal(r.lost.waiting, 100);
  });

  test('the same seed gives the same trial; another seed gives another', () => {
    const model = {
      ...quietModel,
      classes: [
        {
          cause: 'gpu',
          scope: 'gpu' as const,
          detection: 'crash' as const,
          ratePerUnitHour: 1e-3,
          repairHours: 1,
        },
      ],
    };
    const run = (seed: number) =>
      simulateTrial(smallJob, handPolicy, model, { horizonS: 86400 * 3, seed, curvePoints: 10 });
    assert.deepEqual(run(7), run(7));
    assert.notDeepEqual(run(7).lost, run(8).lost);
  });
});

describe('silent data corruption', () => {
  test('rolls back past every checkpoint taken after the corruption', () => {
    // Corrupted at t = 1,000 (progress 968); snapshots 1,020 ... 1,200 are poisoned. Found at
    // t = 1,250, when progress is 1,210: the newest clean checkpoint is the L2 replica of 960.
    const r = simulateTrial(smallJob, handPolicy, quietModel, {
      horizonS: 3000,
      seed: 1,
      randomFailures: false,
      injected: [{ atS: 1000, cause: 'sdc', nodes: [1], detection: 'silent', detectAfterS: 250 }],
      trace: true,
    });
    assert.equal(r.trace[0]?.atS, 1250);
    assert.deepEqual([r.trace[0]?.restoreLevel, r.trace[0]?.restoredProgressS], ['L2', 960]);
    assert.ok(Math.abs(r.lost.recompute - (1210 - 960)) < 1e-9, `recompute ${r.lost.recompute}`);
    assert.equal(r.lost.detection, 0);
  });
});
