import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { planJob, type Plan } from '../../src/plan/index.ts';
import type { ModelArchitecture } from '../../src/zoo/index.ts';
import {
  korthikanti2022,
  korthikantiRequest,
  llama3Request,
  llama3Runs,
  megatron2021,
  megatronModel,
  megatronRequest,
  publishedStepSeconds,
  type MegatronRun,
} from './published-runs.ts';

/**
 * The planner against published runs, every layout dimension pinned as the paper ran it. The
 * error is predicted step time over published step time, minus one (for MFU-only rows:
 * published MFU over predicted MFU, minus one, which is the same ratio of step times). The
 * tolerances are what the model reaches; the README lists every row.
 */

const dir = mkdtempSync(join(tmpdir(), 'cube-plan-validation-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function gptModel(
  run: Pick<MegatronRun, 'name' | 'heads' | 'hidden' | 'layers'>,
): ModelArchitecture {
  return megatronModel(run, dir);
}

function single(plans: readonly Plan[], reason: string | null): Plan {
  assert.equal(plans.length, 1, reason ?? 'expected exactly one plan');
  return plans[0] as Plan;
}

const errors: number[] = [];

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

describe('Narayanan et al. 2021, Table 1 (step time, full recomputation)', () => {
  for (const run of megatron2021)
    test(`GPT ${run.name} on ${run.gpus} A100s is within 12% of the published step time`, () => {
      const r = planJob(megatronRequest(run, gptModel(run)));
      const p = r.plans[0];
      assert.ok(p !== undefined, r.reason ?? '');
      const error = p.stepTimeS / publishedStepSeconds(run) - 1;
      errors.push(Math.abs(error));
      assert.ok(Math.abs(error) <= 0.12, `error ${(error * 100).toFixed(1)}%`);
    });
});

describe('Korthikanti et al. 2022 (MFU, selective recomputation + sequence parallelism)', () => {
  for (const run of korthikanti2022)
    test(`GPT ${run.name} on ${run.gpus} A100s is within 8% of the published MFU`, () => {
      const r = planJob(korthikantiRequest(run, gptModel(run)));
      const p = r.plans[0];
      assert.ok(p !== undefined, r.reason ?? '');
      const error = run.mfu / p.mfu - 1;
      errors.push(Math.abs(error));
      assert.ok(Math.abs(error) <= 0.08, `error ${(error * 100).toFixed(1)}%`);
    });
});

describe('Llama 3 405B, Table 4 (MFU on H100)', () => {
  for (const run of llama3Runs) {
    const tolerance = run.seqLen > 8192 ? 0.25 : 0.1;
    test(`${run.name} is within ${tolerance * 100}% of the published MFU`, () => {
      const r = planJob(llama3Request(run));
      const p = r.plans[0];
      assert.ok(p !== undefined, r.reason ?? '');
      const error = run.mfu / p.mfu - 1;
      errors.push(Math.abs(error));
      assert.ok(Math.abs(error) <= tolerance, `error ${(error * 100).toFixed(1)}%`);
    });
  }
});

describe('over all published runs', () => {
  test('the median error is at most 10% and none is off by more than 25%', () => {
    assert.equal(errors.length, megatron2021.length + korthikanti2022.length + llama3Runs.length);
    assert.ok(median(errors) <= 0.1, `median ${(median(errors) * 100).toFixed(1)}%`);
    assert.ok(Math.max(...errors) <= 0.25);
  });

  test('with every dimension pinned the planner prices exactly one configuration', () => {
    const run = megatron2021[4] as MegatronRun;
    // The published run with the last free dimensions pinned too, and no cap on how many plans
    // come back: exactly one must.
    const published = megatronRequest(run, gptModel(run));
    const r = planJob({
      ...published,
      top: undefined,
      pins: { ...published.pins, vpp: 2, microBatch: 1 },
    });
    single(r.plans, r.reason);
  });
});
