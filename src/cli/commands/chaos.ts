import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { runCampaign } from '../chaos/campaign.ts';
import { FaultKindSchema, faultKinds, type FaultKind } from '../chaos/fault-kinds.ts';
import { formatReport } from '../chaos/report.ts';
import { parsePositiveInt } from '../flags.ts';
import { trainerPython } from '../trainer-python.ts';
import { printJson, type CliOutput } from '../output.ts';
import { parseNonNegativeInt, parsePositiveNumber } from './control.ts';

/** `20m`, `90s`, `1h` or plain seconds, as seconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(value.trim());
  if (m === null)
    throw new CubeError(
      'BAD_FLAG',
      `--duration "${value}" is not a duration such as 90s, 20m or 1h`,
      {
        where: { field: '--duration' },
      },
    );
  const scale = m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1;
  return Number(m[1]) * scale;
}

/** A comma-separated list of fault kinds, each checked. */
export function parseFaultKinds(value: string): FaultKind[] {
  const kinds = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const k of kinds)
    if (!FaultKindSchema.safeParse(k).success)
      throw new CubeError(
        'BAD_FLAG',
        `--faults: "${k}" is not a fault kind (${faultKinds.join(', ')})`,
        {
          where: { field: '--faults' },
        },
      );
  if (kinds.length === 0)
    throw new CubeError('BAD_FLAG', '--faults names no fault kind', {
      where: { field: '--faults' },
    });
  return kinds as FaultKind[];
}

interface ChaosFlags {
  duration: number;
  seed: number;
  nodes: number;
  spares: number;
  faults: FaultKind[];
  meanIntervalS: number;
  steps: number;
  json?: boolean;
  keep?: boolean;
  reference: boolean;
}

/** `cube chaos`: a seeded random fault campaign against a real training job, with its report. */
export function registerChaosCommand(program: Command, output: CliOutput): void {
  program
    .command('chaos')
    .description(
      'start a cluster on this machine, train a real job, inject a seeded random campaign of faults, and report detection, recovery, bit-exactness and lost checkpoints',
    )
    .option(
      '--duration <d>',
      'training time the faults are spread over (90s, 20m, 1h); each recovery adds to the wall time',
      parseDuration,
      20 * 60,
    )
    .option('--seed <n>', 'seed of the fault schedule', parseNonNegativeInt('--seed'), 1)
    .option('--nodes <n>', 'worker nodes (one rank each)', parsePositiveInt('--nodes'), 4)
    .option('--spares <n>', 'hot spares', parseNonNegativeInt('--spares'), 2)
    .option(
      '--faults <kinds>',
      `fault kinds to draw from (${faultKinds.join(',')})`,
      parseFaultKinds,
      [...faultKinds],
    )
    .option(
      '--mean-interval-s <s>',
      'mean seconds between faults (exponential)',
      parsePositiveNumber('--mean-interval-s'),
      60,
    )
    .option(
      '--steps <n>',
      "the trainer's --steps; the campaign ends at --duration and cancels the job, or earlier if the job ends",
      parsePositiveInt('--steps'),
      1_000_000,
    )
    .option(
      '--no-reference',
      'skip the fault-free reference run (losses then compared across attempts only)',
    )
    .option('--keep', 'keep the data directory for inspection')
    .option('--json', 'print the report as JSON')
    .action(async (flags: ChaosFlags) => {
      const python = trainerPython('cube chaos');
      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const report = await runCampaign({
          seed: flags.seed,
          durationSeconds: flags.duration,
          nodes: flags.nodes,
          spares: flags.spares,
          kinds: flags.faults,
          meanIntervalSeconds: flags.meanIntervalS,
          steps: flags.steps,
          reference: flags.reference,
          keep: flags.keep === true,
          python,
          say: (line) => {
            if (flags.json !== true) output.err(line);
          },
          signal: abort.signal,
        });
        if (flags.json === true) printJson(output, report);
        else output.out(formatReport(report));
        if (!report.ok)
          throw new CubeError(
            'INFEASIBLE',
            `chaos: ${report.violations.length} invariant${report.violations.length === 1 ? '' : 's'} broken (seed ${report.seed})`,
          );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
