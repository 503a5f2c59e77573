import { CubeError } from '../core/index.ts';
import type { FailureModel } from './failure-model.ts';
import type { SimJob } from './job.ts';
import type { SimPolicy } from './policy.ts';
import {
  simulateTrial,
  type InjectedFailure,
  type RestoreLevel,
  type TrialResult,
} from './trial.ts';

/** The N of "N days with no fault / no human intervention" the contract reports. */
export const noFaultDays = [1, 5, 30] as const;

export interface MonteCarloOptions {
  readonly days: number;
  readonly trials: number;
  readonly seed: number;
  /** Points of the progress curve (default 61). */
  readonly curvePoints?: number;
  readonly randomFailures?: boolean;
  readonly injected?: readonly InjectedFailure[];
}

/** Mean and the 5th and 95th percentiles over trials, plus a 95% interval of the mean. */
export interface Spread {
  readonly mean: number;
  readonly p5: number;
  readonly p95: number;
  /** Normal-approximation 95% confidence interval of the mean. */
  readonly meanCi95: readonly [number, number];
}

/** What many trials of one policy deliver. */
export interface PolicyResult {
  readonly policy: string;
  readonly description?: string;
  readonly intervalSteps: number;
  readonly intervalMinutes: number;
  readonly intervalReason: string;
  readonly levels: string;
  readonly spareNodes: number;
  readonly goodput: Spread;
  readonly progressHours: Spread;
  readonly steps: Spread;
  readonly interruptions: {
    readonly mean: number;
    readonly p2_5: number;
    readonly p97_5: number;
    readonly unplannedMean: number;
    readonly byCause: Readonly<Record<string, number>>;
  };
  readonly humanInterventions: {
    readonly mean: number;
    readonly p2_5: number;
    readonly p97_5: number;
  };
  readonly lostHours: {
    readonly detection: number;
    readonly restart: number;
    readonly restore: number;
    readonly recompute: number;
    readonly checkpointStall: number;
    readonly checkpointInterference: number;
    readonly waiting: number;
  };
  readonly restores: Readonly<Record<RestoreLevel, number>>;
  readonly skippedWrites: number;
  readonly longestFaultFreeHours: Spread;
  readonly pNoFault: Readonly<Record<string, number>>;
  readonly pNoHuman: Readonly<Record<string, number>>;
  /** Wilson 95% intervals of pNoFault and pNoHuman. */
  readonly pNoFaultCi95: Readonly<Record<string, readonly [number, number]>>;
  readonly pNoHumanCi95: Readonly<Record<string, readonly [number, number]>>;
  /** Progress over time: hours of training done at each of `timesHours` (mean, p5, p95). */
  readonly progress: {
    readonly timesHours: readonly number[];
    readonly mean: readonly number[];
    readonly p5: readonly number[];
    readonly p95: readonly number[];
  };
}

/** The q-quantile (0..1) of sorted values, linearly interpolated. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (pos - lo);
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? sorted.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  const half = 1.96 * Math.sqrt(variance / n);
  return {
    mean,
    p5: quantile(sorted, 0.05),
    p95: quantile(sorted, 0.95),
    meanCi95: [mean - half, mean + half],
  };
}

/** Wilson score interval of a proportion (95%). */
export function wilson95(successes: number, n: number): readonly [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const phat = successes / n;
  const denom = 1 + (z * z) / n;
  const center = (phat + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((phat * (1 - phat)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, center - half), Math.min(1, center + half)];
}

function describeLevels(policy: SimPolicy): string {
  const parts: string[] = [];
  if (policy.l1 !== null) parts.push('L1');
  if (policy.l2 !== null) parts.push(policy.l2.every === 1 ? 'L2' : `L2/${policy.l2.every}`);
  parts.push(
    `${policy.l3.every === 1 ? 'L3' : `L3/${policy.l3.every}`}${policy.l3.blocking ? ' sync' : ''}`,
  );
  return parts.join(' + ');
}

/** Aggregates trials of one policy. */
export function summarizeTrials(
  job: SimJob,
  policy: SimPolicy,
  trials: readonly TrialResult[],
  days: number,
): PolicyResult {
  const n = trials.length;
  const hours = (s: number): number => s / 3600;
  const mean = (f: (r: TrialResult) => number): number => trials.reduce((a, r) => a + f(r), 0) / n;
  const sortedOf = (f: (r: TrialResult) => number): number[] => trials.map(f).sort((a, b) => a - b);
  const causes = new Set<string>();
  for (const r of trials) for (const c of Object.keys(r.byCause)) causes.add(c);
  const byCause: Record<string, number> = {};
  for (const c of causes) byCause[c] = mean((r) => r.byCause[c] ?? 0);
  const interruptions = sortedOf((r) => r.interruptions);
  const humans = sortedOf((r) => r.humanInterventions);
  const pNoFault: Record<string, number> = {};
  const pNoHuman: Record<string, number> = {};
  const pNoFaultCi95: Record<string, readonly [number, number]> = {};
  const pNoHumanCi95: Record<string, readonly [number, number]> = {};
  for (const d of noFaultDays) {
    const s = d * 86400;
    const okFault = trials.filter((r) => r.firstFaultS > s).length;
    const okHuman = trials.filter((r) => r.firstHumanS > s).length;
    pNoFault[String(d)] = okFault / n;
    pNoHuman[String(d)] = okHuman / n;
    pNoFaultCi95[String(d)] = wilson95(okFault, n);
    pNoHumanCi95[String(d)] = wilson95(okHuman, n);
  }
  const points = trials[0]?.curve.length ?? 0;
  const timesHours: number[] = [];
  const curveMean: number[] = [];
  const curveP5: number[] = [];
  const curveP95: number[] = [];
  for (let i = 0; i < points; i += 1) {
    timesHours.push(points <= 1 ? days * 24 : (i * days * 24) / (points - 1));
    const col = trials.map((r) => hours(r.curve[i] as number)).sort((a, b) => a - b);
    curveMean.push(col.reduce((a, b) => a + b, 0) / n);
    curveP5.push(quantile(col, 0.05));
    curveP95.push(quantile(col, 0.95));
  }
  return {
    policy: policy.name,
    ...(policy.description === undefined ? {} : { description: policy.description }),
    intervalSteps: policy.intervalSteps,
    intervalMinutes: policy.intervalS / 60,
    intervalReason: policy.intervalReason,
    levels: describeLevels(policy),
    spareNodes: policy.spareNodes,
    goodput: spread(trials.map((r) => r.goodput)),
    progressHours: spread(trials.map((r) => hours(r.progressS))),
    steps: spread(trials.map((r) => r.steps)),
    interruptions: {
      mean: mean((r) => r.interruptions),
      p2_5: quantile(interruptions, 0.025),
      p97_5: quantile(interruptions, 0.975),
      unplannedMean: mean((r) => r.unplannedInterruptions),
      byCause,
    },
    humanInterventions: {
      mean: mean((r) => r.humanInterventions),
      p2_5: quantile(humans, 0.025),
      p97_5: quantile(humans, 0.975),
    },
    lostHours: {
      detection: mean((r) => hours(r.lost.detection)),
      restart: mean((r) => hours(r.lost.restart)),
      restore: mean((r) => hours(r.lost.restore)),
      recompute: mean((r) => hours(r.lost.recompute)),
      checkpointStall: mean((r) => hours(r.lost.checkpointStall)),
      checkpointInterference: mean((r) => hours(r.lost.checkpointInterference)),
      waiting: mean((r) => hours(r.lost.waiting)),
    },
    restores: {
      L1: mean((r) => r.restores.L1),
      L2: mean((r) => r.restores.L2),
      L3: mean((r) => r.restores.L3),
      none: mean((r) => r.restores.none),
    },
    skippedWrites: mean((r) => r.skippedWrites),
    longestFaultFreeHours: spread(trials.map((r) => hours(r.longestFaultFreeS))),
    pNoFault,
    pNoHuman,
    pNoFaultCi95,
    pNoHumanCi95,
    progress: { timesHours, mean: curveMean, p5: curveP5, p95: curveP95 },
  };
}

/**
 * Runs `trials` trials of one policy (trial k uses random stream k of `seed`, so the same seed
 * gives the same result and every policy meets the same failure draws).
 */
export function runMonteCarlo(
  job: SimJob,
  policy: SimPolicy,
  model: FailureModel,
  options: MonteCarloOptions,
): PolicyResult {
  if (!(options.days > 0))
    throw new CubeError('INVALID_VALUE', `days must be positive, got ${options.days}`, {
      where: { field: '--days' },
    });
  if (!Number.isInteger(options.trials) || options.trials < 1)
    throw new CubeError(
      'INVALID_VALUE',
      `trials must be a positive integer, got ${options.trials}`,
      {
        where: { field: '--trials' },
      },
    );
  const horizonS = options.days * 86400;
  const extendedHorizonS = Math.max(horizonS, Math.max(...noFaultDays) * 86400);
  const trials: TrialResult[] = [];
  for (let k = 0; k < options.trials; k += 1)
    trials.push(
      simulateTrial(job, policy, model, {
        horizonS,
        extendedHorizonS,
        seed: options.seed,
        stream: k,
        curvePoints: options.curvePoints ?? 61,
        ...(options.randomFailures === undefined ? {} : { randomFailures: options.randomFailures }),
        ...(options.injected === undefined ? {} : { injected: options.injected }),
      }),
    );
  return summarizeTrials(job, policy, trials, options.days);
}
