import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultCluster } from '../../src/hardware/index.ts';
import {
  defaultFailureModel,
  defaultPolicySpec,
  jobFromCluster,
  llama3Calibration,
  resolvePolicy,
  runMonteCarlo,
  simulateTrial,
} from '../../src/sim/index.ts';
import { handPolicy, smallJob } from './helpers.ts';

// Llama 3 405B: 16 bytes of state per parameter, spread over 16,384 GPUs; a 5 s step.
const llamaJob = jobFromCluster(defaultCluster({ accelerator: 'h100-sxm', gpus: 16_384 }), {
  name: 'llama-3.1-405b',
  stepTimeS: 5,
  checkpointBytesPerGpu: (405e9 * 16) / 16_384,
});

describe('Monte Carlo over the default failure model', () => {
  test('a 54-day, 16,384-GPU run draws the published interruption count within its 95% interval', () => {
    const policy = resolvePolicy(defaultPolicySpec, llamaJob, defaultFailureModel);
    const r = runMonteCarlo(llamaJob, policy, defaultFailureModel, {
      days: 54,
      trials: 100,
      seed: 2024,
    });
    const published = llama3Calibration.interruptions;
    assert.ok(
      r.interruptions.p2_5 <= published && published <= r.interruptions.p97_5,
      `466 outside [${r.interruptions.p2_5}, ${r.interruptions.p97_5}]`,
    );
    // The unexpected ones alone: within two Poisson standard deviations of 419.
    assert.ok(Math.abs(r.interruptions.unplannedMean - 419) < 2 * Math.sqrt(419 / 100) * 3);
    // Every cause of the table appears, at about its published count.
    for (const [cause, count] of Object.entries(llama3Calibration.counts)) {
      const simulated = r.interruptions.byCause[cause] ?? -1;
      const tolerance = cause === 'network-switch' ? count : 4 * Math.sqrt(count / 100) + 0.5;
      // network-switch: the simulated cluster has 512 rail switches, Llama's had 1,024 ToRs.
      if (cause === 'network-switch') assert.ok(simulated > 0 && simulated < count);
      else assert.ok(Math.abs(simulated - count) < tolerance, `${cause}: ${simulated} vs ${count}`);
    }
    // Meta reports more than 90% effective training time on this run.
    assert.ok(r.goodput.mean > 0.85 && r.goodput.mean < 0.97, `goodput ${r.goodput.mean}`);
  });

  test('the same seed gives the same result', () => {
    const policy = resolvePolicy(defaultPolicySpec, llamaJob, defaultFailureModel);
    const run = (seed: number) =>
      runMonteCarlo(llamaJob, policy, defaultFailureModel, { days: 5, trials: 8, seed });
    assert.deepEqual(run(42), run(42));
    assert.notDeepEqual(run(42).goodput, run(43).goodput);
  });

  test('every second of every trial is either progress or one of the lost-time categories', () => {
    const job = { ...smallJob, gpus: 32 };
    const model = {
      ...defaultFailureModel,
      // Make failures frequent enough to overlap with recoveries and with each other.
      classes: defaultFailureModel.classes.map((c) => ({
        ...c,
        ratePerUnitHour: c.ratePerUnitHour * 2000,
      })),
    };
    const policy = { ...handPolicy, l2: { ...handPolicy.l2!, slowdown: 0.3 }, spareNodes: 1 };
    for (let stream = 0; stream < 20; stream += 1) {
      const r = simulateTrial(job, policy, model, { horizonS: 5 * 86400, seed: 9, stream });
      const l = r.lost;
      const total =
        r.progressS +
        l.detection +
        l.restart +
        l.waiting +
        l.restore +
        l.recompute +
        l.checkpointStall +
        l.checkpointInterference;
      assert.ok(Math.abs(total - 5 * 86400) < 1e-6 * 86400, `stream ${stream}: ${total}`);
      assert.ok(r.interruptions > 10);
    }
  });

  test('pNoFault falls with the number of days and matches the Poisson odds of a small cluster', () => {
    const job = jobFromCluster(defaultCluster({ accelerator: 'h100-sxm', gpus: 64 }), {
      name: 'small',
      stepTimeS: 2,
      checkpointBytesPerGpu: 1e9,
    });
    const policy = resolvePolicy(defaultPolicySpec, job, defaultFailureModel);
    const r = runMonteCarlo(job, policy, defaultFailureModel, { days: 5, trials: 400, seed: 5 });
    let ratePerDay = 0;
    for (const c of defaultFailureModel.classes) {
      if (c.detection === 'planned' || c.detection === 'silent') continue;
      const units = c.scope === 'gpu' || c.scope === 'rank' ? 64 : c.scope === 'job' ? 1 : 8; // hosts, switches
      ratePerDay += c.ratePerUnitHour * units * 24;
    }
    const expected = Math.exp(-ratePerDay * 5);
    const [lo, hi] = r.pNoFaultCi95['5'] ?? [0, 1];
    assert.ok(r.pNoFault['1']! >= r.pNoFault['5']! && r.pNoFault['5']! >= r.pNoFault['30']!);
    // Silent corruptions count when found, so allow a little slack below the interval.
    assert.ok(expected >= lo - 0.03 && expected <= hi + 0.03, `${expected} vs [${lo}, ${hi}]`);
  });
});
