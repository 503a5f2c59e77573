import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { planJob, type Plan } from '../../plan/index.ts';
import {
  defaultFailureModel,
  defaultPolicySpec,
  jobFailureRatePerHour,
  jobFromPlan,
  loadFailureModel,
  loadPolicyFile,
  resolvePolicy,
  progressPlotSvg,
  progressPlotText,
  runMonteCarlo,
  simulationReport,
  type PolicyResult,
  type ReportHeader,
  type SimJob,
} from '../../sim/index.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';
import { addPlanOptions, planRequestFromOptions } from '../plan-options.ts';

function positiveNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
      throw new CubeError('BAD_FLAG', `${flag} must be a number above 0, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

function integerAtLeast(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min)
      throw new CubeError(
        'BAD_FLAG',
        `${flag} must be an integer of at least ${min}, got "${value}"`,
        {
          where: { field: flag },
        },
      );
    return n;
  };
}

interface SimulateFlags extends Record<string, unknown> {
  days?: number;
  trials?: number;
  seed?: number;
  failureModel?: string;
  compare?: string;
  stepTime?: number;
  plot?: string;
  json?: boolean;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const num = (x: number, digits = 1): string => x.toFixed(digits);

function planSummary(plan: Plan): Record<string, unknown> {
  return {
    tp: plan.tp,
    pp: plan.pp,
    vpp: plan.vpp,
    dp: plan.dp,
    cp: plan.cp,
    ep: plan.ep,
    sp: plan.sp,
    zero: plan.zero,
    microBatch: plan.microBatch,
    gradAccum: plan.gradAccum,
    recompute: plan.recompute,
    offload: plan.offload,
    memoryGiB: plan.memoryGiB,
    stepTimeS: plan.stepTimeS,
    tokensPerS: plan.tokensPerS,
    mfu: plan.mfu,
    checkpointBytesPerGpu: plan.checkpointBytesPerGpu,
  };
}

function humanReport(
  header: ReportHeader,
  job: SimJob,
  results: readonly PolicyResult[],
  mtbfHours: number,
): string {
  const lines: string[] = [];
  lines.push(
    `${header.model} on ${header.gpus.toLocaleString('en-US')} x ${header.accelerator ?? 'GPU'} (${header.nodes.toLocaleString('en-US')} nodes), ${header.days} days, ${header.trials} trials, seed ${header.seed}`,
  );
  const plan = header.plan;
  lines.push(
    `step ${num(header.stepTimeS, 3)} s (${header.stepTimeSource})${plan === null ? '' : `; plan tp ${String(plan['tp'])} pp ${String(plan['pp'])} cp ${String(plan['cp'])} ep ${String(plan['ep'])} dp ${String(plan['dp'])} zero ${String(plan['zero'])} recompute ${String(plan['recompute'])}`}`,
  );
  lines.push(
    `checkpoint ${num(header.checkpointBytesPerGpu / 1e9, 2)} GB per GPU, ${num((header.checkpointBytesPerGpu * job.gpusPerNode) / 1e9, 1)} GB per node (${header.checkpointSource})`,
  );
  lines.push(
    `failure model ${header.failureModel}: job MTBF ${num(mtbfHours, 2)} h (unplanned faults)`,
  );
  lines.push('');
  lines.push(
    renderTable(
      [
        'policy',
        'levels',
        'interval',
        'spares',
        'goodput',
        '5-95%',
        'interrupts',
        '2.5-97.5%',
        'humans',
      ],
      results.map((r) => [
        r.policy,
        r.levels,
        `${num(r.intervalMinutes, 1)} min`,
        r.spareNodes,
        pct(r.goodput.mean),
        `${pct(r.goodput.p5)}-${pct(r.goodput.p95)}`,
        num(r.interruptions.mean),
        `${num(r.interruptions.p2_5, 0)}-${num(r.interruptions.p97_5, 0)}`,
        num(r.humanInterventions.mean, 2),
      ]),
    ),
  );
  lines.push('');
  lines.push(
    renderTable(
      ['policy', 'longest fault-free h', 'P(no fault) 1/5/30 d', 'P(no human) 1/5/30 d'],
      results.map((r) => [
        r.policy,
        `${num(r.longestFaultFreeHours.mean)} (5-95%: ${num(r.longestFaultFreeHours.p5)}-${num(r.longestFaultFreeHours.p95)})`,
        ['1', '5', '30'].map((d) => num(r.pNoFault[d] ?? 0, 2)).join(' / '),
        ['1', '5', '30'].map((d) => num(r.pNoHuman[d] ?? 0, 2)).join(' / '),
      ]),
    ),
  );
  lines.push('');
  lines.push('time lost, hours per run (mean):');
  const categories: [string, keyof PolicyResult['lostHours']][] = [
    ['detection', 'detection'],
    ['restart', 'restart'],
    ['waiting (spares, people)', 'waiting'],
    ['restore', 'restore'],
    ['recompute', 'recompute'],
    ['checkpoint stall', 'checkpointStall'],
    ['checkpoint interference', 'checkpointInterference'],
  ];
  const rows: (string | number)[][] = categories.map(([label, key]) => [
    label,
    ...results.map((r) => num(r.lostHours[key], 2)),
  ]);
  rows.push([
    'total',
    ...results.map((r) =>
      num(
        Object.values(r.lostHours).reduce((a, b) => a + b, 0),
        2,
      ),
    ),
  ]);
  lines.push(renderTable(['category', ...results.map((r) => r.policy)], rows));
  lines.push('');
  const base = results[0] as PolicyResult;
  const causes = Object.entries(base.interruptions.byCause)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  lines.push(`interruptions by cause, per run (mean, ${base.policy}):`);
  lines.push(causes.map(([c, n]) => `  ${c.padEnd(24)} ${num(n, 2).padStart(8)}`).join('\n'));
  lines.push('');
  lines.push('progress over time:');
  lines.push(progressPlotText(results));
  return lines.join('\n');
}

/** `cube simulate`: Monte Carlo of a training job on a cluster over days, policies side by side. */
export function registerSimulateCommand(program: Command, output: CliOutput): void {
  const command = program
    .command('simulate')
    .description(
      'simulate a training job on a cluster over days: failures, checkpoints, recoveries, goodput',
    );
  addPlanOptions(command)
    .option('--days <d>', 'days of wall-clock time to simulate', positiveNumber('--days'))
    .option('--trials <k>', 'Monte Carlo trials (default 100)', integerAtLeast('--trials', 1))
    .option('--seed <s>', 'random seed (default 1)', integerAtLeast('--seed', 0))
    .option('--failure-model <file>', 'failure model file (YAML/JSON); default: the Llama 3 model')
    .option('--compare <file>', 'policy file: policies simulated side by side')
    .option(
      '--step-time <seconds>',
      "a measured step time, instead of the planner's",
      positiveNumber('--step-time'),
    )
    .option('--plot <file.svg>', 'write the progress plot as SVG')
    .option('--json', 'print the result as JSON')
    .action((options: SimulateFlags) => {
      if (options.days === undefined)
        throw new CubeError('BAD_FLAG', '--days is required: how many days to simulate', {
          where: { field: '--days' },
          hint: 'e.g. --days 30',
        });
      if (options.plot !== undefined && extname(options.plot).toLowerCase() !== '.svg')
        throw new CubeError(
          'BAD_FLAG',
          `--plot writes SVG only; give a .svg file, got "${options.plot}"`,
          {
            where: { field: '--plot' },
            hint: 'PNG is not supported (no image library); convert the SVG if you need one',
          },
        );
      const request = planRequestFromOptions(options);
      const model =
        options.failureModel === undefined
          ? defaultFailureModel
          : loadFailureModel(options.failureModel);
      const specs =
        options.compare === undefined ? [defaultPolicySpec] : loadPolicyFile(options.compare);
      const planned = planJob({ ...request, top: 1 });
      const plan = planned.plans[0] ?? null;
      if (plan === null && options.stepTime === undefined)
        throw new CubeError(
          'INFEASIBLE',
          `no plan fits ${request.model.id} on ${request.cluster.deviceCount} GPUs: ${planned.reason ?? 'no reason given'}`,
          {
            where: { field: '--model' },
            hint: 'use more GPUs, pin other plan flags, or give a measured --step-time',
          },
        );
      const { job, source } = jobFromPlan(request.model, request.cluster, plan, {
        ...(options.stepTime === undefined ? {} : { stepTimeS: options.stepTime }),
      });
      const days = options.days;
      const trials = options.trials ?? 100;
      const seed = options.seed ?? 1;
      const results = specs.map((spec) =>
        runMonteCarlo(job, resolvePolicy(spec, job, model), model, { days, trials, seed }),
      );
      const accelerators = [...new Set(request.cluster.runs.map((r) => r.accelerator.id))];
      const header: ReportHeader = {
        model: request.model.id,
        accelerator: accelerators.join('+'),
        gpus: job.gpus,
        nodes: job.nodes,
        days,
        trials,
        seed,
        stepTimeS: job.stepTimeS,
        stepTimeSource: source.stepTime,
        checkpointBytesPerGpu: job.checkpointBytesPerGpu,
        checkpointSource:
          source.checkpoint === 'planner'
            ? "the plan's sharding"
            : 'no plan fits: weights + optimizer state spread over every GPU',
        plan: plan === null ? null : planSummary(plan),
        failureModel: model.name,
      };
      if (options.plot !== undefined) {
        const file = options.plot;
        try {
          writeFileSync(
            file,
            progressPlotSvg(
              results,
              `${header.model} on ${header.gpus} GPUs: days of training done over ${days} days`,
            ),
          );
        } catch (cause) {
          throw new CubeError(
            'STORAGE_FAILED',
            `cannot write ${file}: ${(cause as Error).message}`,
            {
              where: { file, field: '--plot' },
              cause,
            },
          );
        }
      }
      if (options.json === true) {
        printJson(output, simulationReport(header, results));
        return;
      }
      const rate = jobFailureRatePerHour(job, model);
      output.out(humanReport(header, job, results, rate > 0 ? 1 / rate : Infinity));
      if (options.plot !== undefined) output.out(`\nwrote ${options.plot}`);
    });
}
