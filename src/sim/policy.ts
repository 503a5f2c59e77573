import { z } from 'zod';
import { CubeError, loadStructuredFile, schemaError } from '../core/index.ts';
import type { FailureModel, FailureScope } from './failure-model.ts';
import { switchCount, type SimJob } from './job.ts';

/**
 * Reliability policies: how often to checkpoint and to which levels, how many hot spares, how
 * recovery goes. A policy file (`--compare`) lists policies; every field is optional and
 * defaults to the three-level asynchronous policy documented here.
 */

const positive = z.number().positive();
const nonNegative = z.number().nonnegative();
const fraction = z.number().min(0).max(10);

const intervalSchema = z.union([
  z.strictObject({ minutes: positive }),
  z.strictObject({ steps: z.int().positive() }),
  z.literal('young-daly'),
]);

const policySpecSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    /** Snapshot cadence: wall minutes of training, steps, or the Young–Daly optimum. */
    interval: intervalSchema.optional(),
    l1: z
      .strictObject({
        enabled: z.boolean().optional(),
        /** Device-to-host copy bandwidth per GPU, GB/s; default: the server's host link. */
        snapshotGBs: positive.optional(),
      })
      .optional(),
    l2: z
      .strictObject({
        enabled: z.boolean().optional(),
        /** Replicate every k-th snapshot. */
        every: z.int().positive().optional(),
        /** Replication bandwidth per node, GB/s; default: `nicShare` of the node's NICs. */
        gbsPerNode: positive.optional(),
        nicShare: z.number().gt(0).max(1).optional(),
        /** Fraction by which a step slows while the replication runs. */
        slowdown: fraction.optional(),
      })
      .optional(),
    l3: z
      .strictObject({
        /** Persist every k-th snapshot; default: about every 30 minutes. */
        every: z.int().positive().optional(),
        gbsPerNode: positive.optional(),
        /** The storage system's total bandwidth, GB/s, shared by every node. */
        aggregateGBs: positive.optional(),
        slowdown: fraction.optional(),
        /** True: training waits for the write (a synchronous checkpoint). */
        blocking: z.boolean().optional(),
      })
      .optional(),
    spares: z
      .union([
        z.strictObject({ nodes: z.int().min(0) }),
        z.strictObject({ fraction: z.number().min(0).max(1) }),
      ])
      .optional(),
    recovery: z
      .strictObject({
        cordonS: nonNegative.optional(),
        spareSwapS: nonNegative.optional(),
        initBaseS: nonNegative.optional(),
        initPerRankS: nonNegative.optional(),
        humanResponseS: nonNegative.optional(),
        repeatWindowHours: nonNegative.optional(),
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    if (p.l1?.enabled !== false) return;
    if (p.l2?.enabled === true)
      ctx.addIssue({
        code: 'custom',
        path: ['l2', 'enabled'],
        message: 'L2 replicates the L1 copy; it needs l1.enabled',
      });
    if (p.l3?.blocking === false)
      ctx.addIssue({
        code: 'custom',
        path: ['l3', 'blocking'],
        message: 'a background L3 write reads the L1 copy; without L1 it must be blocking',
      });
    if (p.l3?.every !== undefined && p.l3.every !== 1)
      ctx.addIssue({
        code: 'custom',
        path: ['l3', 'every'],
        message: 'without L1 every checkpoint is an L3 write; every must be 1',
      });
  });

/** One policy as written in a file. */
export type PolicySpec = z.output<typeof policySpecSchema>;

/** The `--compare` file: policies side by side, the first one is the baseline. */
export const policyFileSchema = z
  .strictObject({ policies: z.array(policySpecSchema).min(1) })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.policies.forEach((p, i) => {
      if (seen.has(p.name))
        ctx.addIssue({
          code: 'custom',
          path: ['policies', i, 'name'],
          message: `duplicate policy name "${p.name}"`,
        });
      seen.add(p.name);
    });
  });

/** Reads a `--compare` policy file; errors name the path inside it. */
export function loadPolicyFile(file: string): readonly PolicySpec[] {
  return loadStructuredFile(file, policyFileSchema).policies;
}

/** Validates policies given in memory. */
export function parsePolicies(value: unknown, what = 'policies'): readonly PolicySpec[] {
  const parsed = policyFileSchema.safeParse(value);
  if (!parsed.success) throw schemaError(parsed.error, { what, code: 'INVALID_VALUE' });
  return parsed.data.policies;
}

/** The default policy: three-level asynchronous checkpoints every 10 minutes, 2% hot spares. */
export const defaultPolicySpec: PolicySpec = { name: 'three-level-async' };

/** Defaults behind every optional field (documented in the README). */
export const policyDefaults = {
  intervalMinutes: 10,
  l2Every: 1,
  l2NicShare: 0.25,
  l2Slowdown: 0.02,
  l3TargetMinutes: 30,
  l3GBsPerNode: 5,
  /** Llama 3's Tectonic storage sustained 2 TB/s (arXiv 2407.21783, §3.3.1). */
  l3AggregateGBs: 2000,
  l3Slowdown: 0.02,
  spareFraction: 0.02,
  cordonS: 5,
  spareSwapS: 30,
  initBaseS: 60,
  initPerRankS: 0.01,
  humanResponseS: 1800,
  repeatWindowHours: 72,
} as const;

/** A resolved policy: every cost in seconds, as the simulator core uses it. */
export interface SimPolicy {
  readonly name: string;
  readonly description?: string;
  /** Steps between snapshots, and the same in seconds of training. */
  readonly intervalSteps: number;
  readonly intervalS: number;
  /** How the interval was chosen, e.g. `10 min` or `Young-Daly sqrt(2 x 1.2 s x 2.8 h)`. */
  readonly intervalReason: string;
  readonly l1: { readonly stallS: number; readonly restoreS: number } | null;
  readonly l2: {
    readonly every: number;
    readonly writeS: number;
    readonly slowdown: number;
    readonly restoreS: number;
  } | null;
  readonly l3: {
    readonly every: number;
    readonly writeS: number;
    readonly slowdown: number;
    readonly blocking: boolean;
    readonly restoreS: number;
  };
  readonly spareNodes: number;
  readonly recovery: {
    readonly cordonS: number;
    readonly spareSwapS: number;
    /** Gang initialization: base + per-rank × ranks. */
    readonly restartS: number;
    readonly humanResponseS: number;
    readonly repeatWindowS: number;
  };
}

/** Failures per hour that interrupt this job (planned maintenance excluded). */
export function jobFailureRatePerHour(job: SimJob, model: FailureModel): number {
  let rate = 0;
  for (const c of model.classes) {
    if (c.detection === 'planned') continue;
    rate += c.ratePerUnitHour * unitsOf(job, c.scope);
  }
  return rate;
}

/** How many units of a scope the job exposes to failures. */
export function unitsOf(job: SimJob, scope: FailureScope): number {
  switch (scope) {
    case 'gpu':
    case 'rank':
      return job.gpus;
    case 'host':
      return job.nodes;
    case 'switch':
      return switchCount(job);
    case 'job':
      return 1;
    default:
      return scope satisfies never;
  }
}

/**
 * Resolves a policy for a job: bandwidths become seconds, the interval becomes a whole number
 * of steps (Young–Daly: sqrt(2 δ M), δ the training time one checkpoint costs, M the job's mean
 * time between failures), spares a node count.
 */
export function resolvePolicy(spec: PolicySpec, job: SimJob, model: FailureModel): SimPolicy {
  const d = policyDefaults;
  const gb = 1e9;
  const bytesPerNode = job.checkpointBytesPerGpu * job.gpusPerNode;
  const totalBytes = job.checkpointBytesPerGpu * job.gpus;
  const l1On = spec.l1?.enabled !== false;
  const snapshotGBs = spec.l1?.snapshotGBs ?? job.snapshotGBsPerGpu;
  const l1 = l1On
    ? {
        stallS: job.checkpointBytesPerGpu / (snapshotGBs * gb),
        restoreS: job.checkpointBytesPerGpu / (snapshotGBs * gb),
      }
    : null;
  const l2On = l1On && spec.l2?.enabled !== false && job.nodes >= 2;
  const l2GBs = spec.l2?.gbsPerNode ?? job.nicGBsPerNode * (spec.l2?.nicShare ?? d.l2NicShare);
  const l2Base = l2On
    ? {
        every: spec.l2?.every ?? d.l2Every,
        writeS: bytesPerNode / (l2GBs * gb),
        slowdown: spec.l2?.slowdown ?? d.l2Slowdown,
        restoreS: bytesPerNode / (l2GBs * gb),
      }
    : null;
  const l3WriteS = Math.max(
    bytesPerNode / ((spec.l3?.gbsPerNode ?? d.l3GBsPerNode) * gb),
    totalBytes / ((spec.l3?.aggregateGBs ?? d.l3AggregateGBs) * gb),
  );
  const l3Blocking = spec.l3?.blocking ?? !l1On;
  const l3Slowdown = l3Blocking ? 0 : (spec.l3?.slowdown ?? d.l3Slowdown);
  const interference = (writeS: number, slowdown: number, every: number): number =>
    (writeS * slowdown) / (1 + slowdown) / every;

  // The interval, in whole steps (at least one).
  const interval = spec.interval ?? { minutes: d.intervalMinutes };
  let intervalSteps: number;
  let intervalReason: string;
  if (interval === 'young-daly') {
    const rate = jobFailureRatePerHour(job, model);
    if (rate <= 0)
      throw new CubeError(
        'INVALID_VALUE',
        `policy "${spec.name}": Young-Daly needs a failure rate, and this failure model has none`,
        { where: { field: 'interval' } },
      );
    const mtbfS = 3600 / rate;
    // δ: what one checkpoint costs the training; an L3 write every k-th counts 1/k.
    const l3Every = l1On ? (spec.l3?.every ?? 1) : 1;
    const delta =
      (l1?.stallS ?? 0) +
      (l2Base === null ? 0 : interference(l2Base.writeS, l2Base.slowdown, l2Base.every)) +
      (l3Blocking ? l3WriteS / l3Every : interference(l3WriteS, l3Slowdown, l3Every));
    const optimumS = Math.sqrt(2 * Math.max(delta, 1e-6) * mtbfS);
    intervalSteps = Math.max(1, Math.round(optimumS / job.stepTimeS));
    intervalReason = `Young-Daly sqrt(2 x ${delta.toPrecision(3)} s x ${(mtbfS / 3600).toPrecision(3)} h) = ${optimumS.toPrecision(3)} s`;
  } else if ('minutes' in interval) {
    intervalSteps = Math.max(1, Math.round((interval.minutes * 60) / job.stepTimeS));
    intervalReason = `${interval.minutes} min`;
  } else {
    intervalSteps = interval.steps;
    intervalReason = `${interval.steps} steps`;
  }
  const intervalS = intervalSteps * job.stepTimeS;
  const l3Every = l1On
    ? (spec.l3?.every ?? Math.max(1, Math.round((d.l3TargetMinutes * 60) / intervalS)))
    : 1;

  const spareNodes =
    spec.spares === undefined
      ? Math.max(1, Math.ceil(job.nodes * d.spareFraction))
      : 'nodes' in spec.spares
        ? spec.spares.nodes
        : Math.ceil(job.nodes * spec.spares.fraction);
  const r = spec.recovery ?? {};
  return {
    name: spec.name,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    intervalSteps,
    intervalS,
    intervalReason,
    l1,
    l2: l2Base,
    l3: {
      every: l3Every,
      writeS: l3WriteS,
      slowdown: l3Slowdown,
      blocking: l3Blocking,
      restoreS: l3WriteS,
    },
    spareNodes,
    recovery: {
      cordonS: r.cordonS ?? d.cordonS,
      spareSwapS: r.spareSwapS ?? d.spareSwapS,
      restartS: (r.initBaseS ?? d.initBaseS) + (r.initPerRankS ?? d.initPerRankS) * job.gpus,
      humanResponseS: r.humanResponseS ?? d.humanResponseS,
      repeatWindowS: (r.repeatWindowHours ?? d.repeatWindowHours) * 3600,
    },
  };
}
