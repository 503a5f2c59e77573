import { z } from 'zod';
import { CubeError, loadStructuredFile, schemaError } from '../core/index.ts';

/**
 * Where a failure class strikes, which also says what it takes down:
 * - `gpu`: one accelerator; its whole node is cordoned and replaced.
 * - `host`: one node (server).
 * - `switch`: one tier-1 switch; every node of the group below it is unreachable until the
 *   switch is repaired.
 * - `rank`: one rank's process (a software bug, a collective timeout): no hardware is lost, the
 *   gang restarts in place; the rate is per rank, so it grows with the job.
 * - `job`: the job as a whole (planned maintenance, an external dependency): no hardware is lost,
 *   the gang restarts in place; one rate whatever the job's size.
 */
export const failureScopes = ['gpu', 'host', 'switch', 'rank', 'job'] as const;
export type FailureScope = (typeof failureScopes)[number];

/**
 * How a failure is noticed:
 * - `crash`: a rank exits with an error (Xid, uncorrectable ECC, a Python exception).
 * - `heartbeat`: the node goes silent; the control plane waits out the heartbeat timeout.
 * - `hang`: the collectives stall; the hang (NCCL watchdog) timeout fires.
 * - `probe`: a periodic health probe finds it (uniformly within one probe interval).
 * - `silent`: silent data corruption; training goes on with bad numbers until a check finds it
 *   (uniformly within one check interval), and every checkpoint since is poisoned.
 * - `planned`: a scheduled stop; the job checkpoints first, so it loses no work.
 */
export const detectionKinds = ['crash', 'heartbeat', 'hang', 'probe', 'silent', 'planned'] as const;
export type DetectionKind = (typeof detectionKinds)[number];

const seconds = z.number().nonnegative();

const failureClassSchema = z.strictObject({
  /** The cause's id, as `interruptions.byCause` reports it. */
  cause: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a kebab-case id like "gpu-hbm"'),
  scope: z.enum(failureScopes),
  detection: z.enum(detectionKinds),
  /** Mean hours between failures of ONE unit of the scope (one GPU, host, switch, rank, the job). */
  mtbfHours: z.number().positive(),
  /** Hours until the affected hardware is back in the spare pool (0 for `job`). */
  repairHours: seconds.default(0),
  description: z.string().optional(),
});

const detectionSchema = z.strictObject({
  crashS: seconds,
  heartbeatTimeoutS: seconds,
  hangTimeoutS: seconds,
  probeIntervalS: seconds,
  silentCheckIntervalS: seconds,
});

/** The failure-model file (`--failure-model`, YAML or JSON). */
export const failureModelSchema = z
  .strictObject({
    name: z.string().min(1),
    description: z.string().optional(),
    sources: z.array(z.string()).optional(),
    detection: detectionSchema,
    classes: z.array(failureClassSchema).min(1),
  })
  .superRefine((model, ctx) => {
    const seen = new Set<string>();
    model.classes.forEach((c, i) => {
      if (seen.has(c.cause))
        ctx.addIssue({
          code: 'custom',
          path: ['classes', i, 'cause'],
          message: `duplicate cause "${c.cause}"`,
        });
      seen.add(c.cause);
    });
  });

export type FailureModelFile = z.output<typeof failureModelSchema>;

/** One failure process: a Poisson process per unit of its scope. */
export interface FailureClass {
  readonly cause: string;
  readonly scope: FailureScope;
  readonly detection: DetectionKind;
  /** Failures per hour of one unit (1 / mtbfHours). */
  readonly ratePerUnitHour: number;
  readonly repairHours: number;
  readonly description?: string;
}

/** Detection latencies, seconds. */
export type DetectionLatencies = z.output<typeof detectionSchema>;

/** A resolved failure model: what the simulator draws failures from. */
export interface FailureModel {
  readonly name: string;
  readonly description?: string;
  readonly sources: readonly string[];
  readonly detection: DetectionLatencies;
  readonly classes: readonly FailureClass[];
}

/** Turns a validated file into a model. */
export function failureModelFromFile(file: FailureModelFile): FailureModel {
  return {
    name: file.name,
    ...(file.description === undefined ? {} : { description: file.description }),
    sources: file.sources ?? [],
    detection: file.detection,
    classes: file.classes.map((c) => ({
      cause: c.cause,
      scope: c.scope,
      detection: c.detection,
      ratePerUnitHour: 1 / c.mtbfHours,
      repairHours: c.repairHours,
      ...(c.description === undefined ? {} : { description: c.description }),
    })),
  };
}

/** Validates an in-memory failure model description (errors name the field). */
export function parseFailureModel(value: unknown, what = 'failure model'): FailureModel {
  const parsed = failureModelSchema.safeParse(value);
  if (!parsed.success) throw schemaError(parsed.error, { what, code: 'INVALID_VALUE' });
  return failureModelFromFile(parsed.data);
}

/** Reads a failure-model file (YAML or JSON); a bad file fails naming the path inside it. */
export function loadFailureModel(file: string): FailureModel {
  return failureModelFromFile(loadStructuredFile(file, failureModelSchema));
}

/** The file form of a model (for `examples/sim/` and for printing the default). */
export function failureModelToFile(model: FailureModel): FailureModelFile {
  return {
    name: model.name,
    ...(model.description === undefined ? {} : { description: model.description }),
    sources: [...model.sources],
    detection: model.detection,
    classes: model.classes.map((c) => {
      if (c.ratePerUnitHour <= 0)
        throw new CubeError('INVALID_VALUE', `failure class ${c.cause} has no positive rate`, {
          where: { field: c.cause },
        });
      return {
        cause: c.cause,
        scope: c.scope,
        detection: c.detection,
        mtbfHours: 1 / c.ratePerUnitHour,
        repairHours: c.repairHours,
        ...(c.description === undefined ? {} : { description: c.description }),
      };
    }),
  };
}
