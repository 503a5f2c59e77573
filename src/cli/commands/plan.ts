import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { explainPlans, planJob, type Plan, type PlanResult } from '../../plan/index.ts';
import { parsePositiveInt } from '../flags.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';
import { addPlanOptions, planRequestFromOptions } from '../plan-options.ts';

const gib = 1024 ** 3;

/** The contract form of a plan: every field, scaling efficiency null when it could not be computed. */
function planJson(p: Plan): Record<string, unknown> {
  return {
    ...p,
    scalingEfficiency: Number.isFinite(p.scalingEfficiency) ? p.scalingEfficiency : null,
  };
}

function layout(p: Plan): string {
  const parts = [`tp${p.tp}`, `pp${p.pp}${p.vpp > 1 ? `x${p.vpp}` : ''}`, `dp${p.dp}`];
  if (p.cp > 1) parts.push(`cp${p.cp}`);
  if (p.ep > 1) parts.push(`ep${p.ep}`);
  return parts.join(' ');
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-';
}

function rankedTable(plans: readonly Plan[]): string {
  return renderTable(
    [
      '#',
      'layout',
      'sp',
      'zero',
      'mb x ga',
      'recompute',
      'offload',
      'GiB',
      'step s',
      'tokens/s',
      'TFLOPS',
      'MFU',
      'scaling',
    ],
    plans.map((p, i) => [
      i + 1,
      layout(p),
      p.sp ? 'on' : 'off',
      p.zero,
      `${p.microBatch} x ${p.gradAccum}`,
      p.recompute,
      p.offload,
      Number(p.memoryGiB.toFixed(1)),
      Number(p.stepTimeS.toFixed(3)),
      Math.round(p.tokensPerS),
      Number(p.tflopsPerGpu.toFixed(1)),
      pct(p.mfu),
      pct(p.scalingEfficiency),
    ]),
  );
}

function breakdown(p: Plan): string {
  const lines = [
    `best plan: ${layout(p)}, zero ${p.zero}, micro-batch ${p.microBatch} x ${p.gradAccum} accumulation, recompute ${p.recompute}, offload ${p.offload}`,
  ];
  lines.push('  memory per GPU (worst stage):');
  for (const [term, bytes] of Object.entries(p.memory))
    lines.push(`    ${term.padEnd(12)} ${(bytes / gib).toFixed(2).padStart(8)} GiB`);
  lines.push(`    ${'total'.padEnd(12)} ${p.memoryGiB.toFixed(2).padStart(8)} GiB`);
  lines.push('  step time:');
  for (const [term, seconds] of Object.entries(p.time))
    if (seconds > 0)
      lines.push(
        `    ${term.padEnd(12)} ${seconds.toFixed(3).padStart(8)} s  ${pct(seconds / p.stepTimeS).padStart(6)}`,
      );
  lines.push(`    ${'total'.padEnd(12)} ${p.stepTimeS.toFixed(3).padStart(8)} s`);
  lines.push(`  checkpoint state per GPU: ${(p.checkpointBytesPerGpu / gib).toFixed(2)} GiB`);
  return lines.join('\n');
}

function header(r: PlanResult): string {
  return `${r.model} on ${r.gpus} x ${r.accelerator}, sequence ${r.seqLen} tokens, global batch ${r.globalBatch} sequences`;
}

/** `cube plan`: the parallelism planner from the command line. */
export function registerPlanCommand(program: Command, output: CliOutput): void {
  const command = program
    .command('plan')
    .description('choose how to split a training job and predict memory, step time and MFU');
  addPlanOptions(command)
    .option('--top <k>', 'how many plans to show (default 10)', parsePositiveInt('--top'))
    .option('--explain', 'say why the main alternatives lost')
    .option('--json', 'print {model, accelerator, gpus, plans: [...]} as JSON')
    .action((options: Record<string, unknown>) => {
      const request = {
        ...planRequestFromOptions(options),
        top: (options['top'] as number | undefined) ?? 10,
      };
      const explanation = options['explain'] === true ? explainPlans(request) : null;
      const result = explanation?.result ?? planJob(request);
      if (options['json'] === true) {
        printJson(output, {
          model: result.model,
          accelerator: result.accelerator,
          gpus: result.gpus,
          seqLen: result.seqLen,
          globalBatch: result.globalBatch,
          plans: result.plans.map(planJson),
          ...(result.reason === null ? {} : { reason: result.reason }),
          ...(explanation === null
            ? {}
            : {
                alternatives: explanation.alternatives.map((a) => ({
                  family: a.family,
                  relativeStepTime: a.relativeStepTime,
                  reason: a.reason,
                  plan: a.plan === null ? null : planJson(a.plan),
                })),
              }),
        });
      } else {
        const lines = [header(result)];
        const best = result.plans[0];
        if (best !== undefined) {
          lines.push('', rankedTable(result.plans), '', breakdown(best));
        }
        if (explanation !== null) {
          lines.push('', 'why the alternatives lost (best plan per tp/pp/zero family):');
          lines.push(
            renderTable(
              ['family', 'vs best', 'reason'],
              explanation.alternatives.map((a) => [
                a.family,
                a.relativeStepTime === null ? '-' : `${a.relativeStepTime.toFixed(2)}x`,
                a.reason,
              ]),
            ),
          );
        }
        output.out(lines.join('\n'));
      }
      if (result.reason !== null) throw new CubeError('INFEASIBLE', result.reason);
    });
}
