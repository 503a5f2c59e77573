/**
 * Prints the validation table of the README: every published run with the planner's prediction
 * (every layout dimension pinned as the paper ran it) and the error. The same comparisons are
 * asserted, with their tolerances, in test/plan/validation.test.ts.
 *
 *   node --import tsx bench/plan/validation.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planJob, type Plan, type PlanRequest } from '../../src/plan/index.ts';
import {
  korthikanti2022,
  korthikantiRequest,
  llama3Request,
  llama3Runs,
  megatron2021,
  megatronModel,
  megatronRequest,
  publishedStepSeconds,
} from '../../test/plan/published-runs.ts';

const dir = mkdtempSync(join(tmpdir(), 'cube-plan-validation-'));
const rows: string[] = [];
const errors: number[] = [];

function best(request: PlanRequest): Plan {
  const r = planJob(request);
  const p = r.plans[0];
  if (p === undefined) throw new Error(r.reason ?? 'no plan');
  return p;
}

function layout(p: Plan): string {
  return `tp${p.tp} pp${p.pp}${p.vpp > 1 ? `x${p.vpp}` : ''} dp${p.dp}${p.cp > 1 ? ` cp${p.cp}` : ''} mb${p.microBatch} ${p.recompute}`;
}

for (const run of megatron2021) {
  const p = best(megatronRequest(run, megatronModel(run, dir)));
  const published = publishedStepSeconds(run);
  const error = p.stepTimeS / published - 1;
  errors.push(Math.abs(error));
  rows.push(
    `| Narayanan 2021 | GPT ${run.name} | ${run.gpus} A100 | ${layout(p)} | step ${published.toFixed(2)} s | ${p.stepTimeS.toFixed(2)} s | ${(error * 100).toFixed(1)}% |`,
  );
}
for (const run of korthikanti2022) {
  const p = best(korthikantiRequest(run, megatronModel(run, dir)));
  const error = run.mfu / p.mfu - 1;
  errors.push(Math.abs(error));
  rows.push(
    `| Korthikanti 2022 | GPT ${run.name} | ${run.gpus} A100 | ${layout(p)} | MFU ${(run.mfu * 100).toFixed(1)}% | ${(p.mfu * 100).toFixed(1)}% | ${(error * 100).toFixed(1)}% |`,
  );
}
for (const run of llama3Runs) {
  const p = best(llama3Request(run));
  const error = run.mfu / p.mfu - 1;
  errors.push(Math.abs(error));
  rows.push(
    `| Llama 3 2024 | ${run.name} | ${run.gpus} H100 | ${layout(p)} | MFU ${(run.mfu * 100).toFixed(0)}% | ${(p.mfu * 100).toFixed(1)}% | ${(error * 100).toFixed(1)}% |`,
  );
}
rmSync(dir, { recursive: true, force: true });
const sorted = [...errors].sort((a, b) => a - b);
const mid = Math.floor(sorted.length / 2);
const median =
  sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
console.log(
  '| source | model | GPUs | layout (as run; vpp, micro-batch, recompute where unstated: planner) | published | predicted | error (step time) |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const row of rows) console.log(row);
console.log(
  `\nmedian |error| ${(median * 100).toFixed(1)}%, max ${(Math.max(...errors) * 100).toFixed(1)}% over ${errors.length} runs`,
);
