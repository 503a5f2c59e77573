import { Option, type Command } from 'commander';
import { CubeError } from '../core/index.ts';
import { defaultCluster, loadClusterFile, type Cluster } from '../hardware/index.ts';
import type { PlanPins, PlanRequest, Precision, SoftwareProfileId } from '../plan/index.ts';
import { resolveModel } from '../zoo/index.ts';

/**
 * The plan flags `cube plan` and `cube simulate` share: what to train, where, and which
 * dimensions of the parallel layout are pinned.
 */

function flagError(flag: string, message: string, allowed?: readonly string[]): CubeError {
  return new CubeError('BAD_FLAG', `${flag} ${message}`, {
    where: { field: flag, ...(allowed === undefined ? {} : { allowed }) },
  });
}

function positive(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n <= 0)
      throw flagError(flag, `must be a positive integer, got "${value}"`);
    return n;
  };
}

function oneOf<T extends string>(flag: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value))
      throw flagError(flag, `must be one of ${allowed.join(', ')}, got "${value}"`, allowed);
    return value as T;
  };
}

const recomputes = ['none', 'selective', 'full'] as const;
const offloads = ['none', 'optimizer', 'all'] as const;
const precisions = ['bf16', 'fp8'] as const;
const softwares = ['modern', 'megatron-2021'] as const;

function parseZero(value: string): 0 | 1 | 2 | 3 {
  if (!['0', '1', '2', '3'].includes(value))
    throw flagError('--zero', `must be 0, 1, 2 or 3, got "${value}"`, ['0', '1', '2', '3']);
  return Number(value) as 0 | 1 | 2 | 3;
}

function parseSp(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw flagError('--sp', `must be on or off, got "${value}"`, ['on', 'off']);
}

/** Adds the plan flags to a command. */
export function addPlanOptions(command: Command): Command {
  return command
    .option('--model <id|file>', 'a zoo model id or a model file (JSON/YAML)')
    .option('--accelerator <id>', 'accelerator of the default cluster (with --gpus)')
    .option('--gpus <n>', 'accelerators in the default cluster', positive('--gpus'))
    .option('--cluster <file>', 'a cluster file instead of --accelerator/--gpus')
    .option(
      '--seq-len <tokens>',
      'tokens per sequence (default 4096, capped by the model)',
      positive('--seq-len'),
    )
    .option(
      '--global-batch <sequences>',
      'sequences per step (default: see README)',
      positive('--global-batch'),
    )
    .option('--tp <n>', 'pin tensor parallelism', positive('--tp'))
    .option('--pp <n>', 'pin pipeline parallelism', positive('--pp'))
    .option(
      '--vpp <n>',
      'pin virtual stages per pipeline rank (interleaved schedule)',
      positive('--vpp'),
    )
    .option('--cp <n>', 'pin context parallelism', positive('--cp'))
    .option('--ep <n>', 'pin expert parallelism', positive('--ep'))
    .option('--sp <on|off>', 'pin sequence parallelism', parseSp)
    .option('--micro-batch <n>', 'pin the micro-batch size (sequences)', positive('--micro-batch'))
    .option('--zero <stage>', 'pin the ZeRO stage (0-3)', parseZero)
    .addOption(
      new Option('--recompute <mode>', 'pin activation recomputation')
        .choices(recomputes)
        .argParser(oneOf('--recompute', recomputes)),
    )
    .addOption(
      new Option('--offload <what>', 'pin CPU offload')
        .choices(offloads)
        .argParser(oneOf('--offload', offloads)),
    )
    .addOption(
      new Option('--precision <format>', 'matrix-product precision (default bf16)')
        .choices(precisions)
        .argParser(oneOf('--precision', precisions)),
    )
    .addOption(
      new Option(
        '--software <profile>',
        'software stack: what overlaps, which kernels (default modern)',
      )
        .choices(softwares)
        .argParser(oneOf('--software', softwares)),
    );
}

/** A flag value as text (numbers and booleans as written, anything else as JSON). */
function text(v: unknown): string {
  return typeof v === 'string'
    ? v
    : typeof v === 'number' || typeof v === 'boolean'
      ? String(v)
      : JSON.stringify(v);
}

function intOf(options: Record<string, unknown>, key: string, flag: string): number | undefined {
  const v = options[key];
  return v === undefined ? undefined : positive(flag)(text(v));
}

function clusterOf(options: Record<string, unknown>): Cluster {
  const file = options['cluster'];
  const accelerator = options['accelerator'];
  const gpus = intOf(options, 'gpus', '--gpus');
  if (typeof file === 'string') {
    if (accelerator !== undefined || gpus !== undefined)
      throw flagError('--cluster', 'and --accelerator/--gpus cannot be given together');
    return loadClusterFile(file);
  }
  if (typeof accelerator !== 'string' || gpus === undefined)
    throw new CubeError(
      'BAD_FLAG',
      'which cluster? give --accelerator ID and --gpus N, or --cluster FILE',
      {
        where: { field: typeof accelerator !== 'string' ? '--accelerator' : '--gpus' },
        hint: 'e.g. --accelerator h100-sxm --gpus 64',
      },
    );
  return defaultCluster({ accelerator, gpus });
}

/** Builds a plan request from parsed plan flags; throws BAD_FLAG / UNKNOWN_ID / file errors. */
export function planRequestFromOptions(options: Record<string, unknown>): PlanRequest {
  const model = options['model'];
  if (typeof model !== 'string' || model === '')
    throw new CubeError('BAD_FLAG', '--model is required: a zoo model id or a model file', {
      where: { field: '--model' },
      hint: 'cube zoo lists the model ids',
    });
  const pins: PlanPins = {
    ...num(options, 'tp', '--tp'),
    ...num(options, 'pp', '--pp'),
    ...num(options, 'vpp', '--vpp'),
    ...num(options, 'cp', '--cp'),
    ...num(options, 'ep', '--ep'),
    ...num(options, 'microBatch', '--micro-batch'),
    ...(options['sp'] === undefined
      ? {}
      : {
          sp: typeof options['sp'] === 'boolean' ? options['sp'] : parseSp(text(options['sp'])),
        }),
    ...(options['zero'] === undefined ? {} : { zero: parseZero(text(options['zero'])) }),
    ...(options['recompute'] === undefined
      ? {}
      : { recompute: oneOf('--recompute', recomputes)(text(options['recompute'])) }),
    ...(options['offload'] === undefined
      ? {}
      : { offload: oneOf('--offload', offloads)(text(options['offload'])) }),
  };
  const seqLen = intOf(options, 'seqLen', '--seq-len');
  const globalBatch = intOf(options, 'globalBatch', '--global-batch');
  const precision: Precision | undefined =
    options['precision'] === undefined
      ? undefined
      : oneOf('--precision', precisions)(text(options['precision']));
  const software: SoftwareProfileId | undefined =
    options['software'] === undefined
      ? undefined
      : oneOf('--software', softwares)(text(options['software']));
  return {
    model: resolveModel(model, { field: '--model' }),
    cluster: clusterOf(options),
    pins,
    ...(seqLen === undefined ? {} : { seqLen }),
    ...(globalBatch === undefined ? {} : { globalBatch }),
    ...(precision === undefined ? {} : { precision }),
    ...(software === undefined ? {} : { software }),
  };
}

function num(options: Record<string, unknown>, key: keyof PlanPins, flag: string): PlanPins {
  const v = intOf(options, key, flag);
  return v === undefined ? {} : { [key]: v };
}
