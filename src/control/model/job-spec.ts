import { z } from 'zod';
import {
  CubeError,
  formatIssuePath,
  nearestNames,
  parseYamlText,
  schemaError,
} from '../../core/index.ts';
import type { Immutable } from './immutable.ts';
import { DeviceKindSchema } from './node.ts';

const count = z.int().min(1);

/**
 * Text that reaches exec(2) (the command, its working directory, environment values): a NUL
 * byte cannot be passed there, so a spec holding one would be accepted and then fail at every
 * launch; it is refused at submit instead.
 */
const execText = z.string().refine((s) => !s.includes('\0'), 'must not contain a NUL byte');

/** How many ranks a job runs: `nodes` x `devicesPerNode`. */
export const RanksSchema = z.strictObject({ nodes: count, devicesPerNode: count });

/** The parallel layout; its product must be the world size. */
export const LayoutSchema = z.strictObject({ tp: count, pp: count, dp: count });

/** Checkpoints to keep at each level. */
export const CheckpointKeepSchema = z.strictObject({
  L1: count.default(2),
  L2: count.default(2),
  L3: count.default(3),
});

export const CheckpointPolicySchema = z.strictObject({
  /** Passed to the trainer as CUBE_CKPT_EVERY. */
  everySteps: count.default(10),
  /** Every k-th checkpoint also goes to L3. */
  l3Every: count.default(1),
  /** Default: `<data dir>/l3`. */
  l3Path: z.string().min(1).optional(),
  keep: CheckpointKeepSchema.prefault({}),
});

export const RestartPolicySchema = z.strictObject({
  /** Restarts allowed in a row without progress (`reset: never`: in the job's lifetime). */
  maxRestarts: z.int().min(0).default(3),
  /** Doubles per restart in a row without progress, capped at 60. */
  backoffSeconds: z.number().min(0).default(1),
  /**
   * When the count behind `maxRestarts` and the backoff starts over. `progress` (absent means
   * this): once an attempt commits a checkpoint past the step it restored, so a month-long run
   * survives any number of unrelated faults while a crash loop still ends. `never`: every
   * restart counts, for the job's lifetime (the behaviour before issue 14).
   */
  reset: z.enum(['progress', 'never']).optional(),
});

/**
 * When a rank is a straggler: its median step time over the last `windowSteps` steps is at
 * least `slowdown` times the median of the other ranks' (docs/control-protocol.md, "Stragglers").
 */
export const StragglerPolicySchema = z.strictObject({
  slowdown: z.number().gt(1).default(1.5),
  windowSteps: z.int().min(2).default(20),
  /**
   * `report`: a `straggler` event only. `replace`: also, at the next L2 or L3 checkpoint commit,
   * cordon the straggler's node and relaunch the gang from that checkpoint with a spare in its
   * place (only while a spare is ready; otherwise the job keeps running and the next commit
   * tries again).
   */
  action: z.enum(['report', 'replace']).default('report'),
});
export type StragglerPolicy = Immutable<z.output<typeof StragglerPolicySchema>>;

export const FaultPolicySchema = z.strictObject({
  /** A node is considered down after this long without a heartbeat. */
  heartbeatTimeoutSeconds: z.number().positive().default(5),
  /** A running rank that reports no progress for this long is hung. */
  hangTimeoutSeconds: z.number().positive().default(120),
  /**
   * Absent, the defaults apply (see stragglerPolicyOf): specs written in code and specs stored
   * before the policy existed carry none.
   */
  straggler: StragglerPolicySchema.optional(),
});

const JobSpecObjectSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]{1,63}$/, 'must be 1 to 63 characters of a-z, 0-9 and -'),
  command: z.array(execText.min(1)).min(1, 'must name the program to run'),
  /** Relative to the submitter's cwd; resolved at submit time. */
  workingDir: execText.min(1).default('.'),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment name'), execText)
    .default({}),
  ranks: RanksSchema,
  deviceType: DeviceKindSchema,
  /** Higher runs first. */
  priority: z.int().default(0),
  layout: LayoutSchema.optional(),
  checkpoint: CheckpointPolicySchema.prefault({}),
  restart: RestartPolicySchema.prefault({}),
  faults: FaultPolicySchema.prefault({}),
});

/** The job spec of docs/control-protocol.md, with its defaults filled in. */
export const JobSpecSchema = JobSpecObjectSchema.superRefine((spec, ctx) => {
  const { layout, ranks } = spec;
  if (layout === undefined) return;
  const worldSize = ranks.nodes * ranks.devicesPerNode;
  const product = layout.tp * layout.pp * layout.dp;
  if (product !== worldSize) {
    ctx.addIssue({
      code: 'custom',
      path: ['layout'],
      message: `tp*pp*dp = ${layout.tp}*${layout.pp}*${layout.dp} = ${product} must equal the world size ranks.nodes*ranks.devicesPerNode = ${ranks.nodes}*${ranks.devicesPerNode} = ${worldSize}`,
    });
  }
});

/** A validated job spec with every default filled in. */
export type JobSpec = Immutable<z.output<typeof JobSpecSchema>>;
/** A job spec as written, before defaults. */
export type JobSpecInput = z.input<typeof JobSpecSchema>;

/** The keys each object of the spec allows, by its path, to name near misses. */
const knownKeys: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(JobSpecObjectSchema.shape),
  ranks: Object.keys(RanksSchema.shape),
  layout: Object.keys(LayoutSchema.shape),
  checkpoint: Object.keys(CheckpointPolicySchema.shape),
  'checkpoint.keep': Object.keys(CheckpointKeepSchema.shape),
  restart: Object.keys(RestartPolicySchema.shape),
  faults: Object.keys(FaultPolicySchema.shape),
  'faults.straggler': Object.keys(StragglerPolicySchema.shape),
};

/** World size of a spec: nodes x devices per node. */
export function worldSizeOf(spec: Pick<JobSpec, 'ranks'>): number {
  return spec.ranks.nodes * spec.ranks.devicesPerNode;
}

/** A spec's straggler policy, its defaults filled in where the spec has none. */
export function stragglerPolicyOf(spec: Pick<JobSpec, 'faults'>): StragglerPolicy {
  return spec.faults.straggler ?? StragglerPolicySchema.parse({});
}

/**
 * Validates an already parsed job spec (e.g. a JSON request body) and fills its defaults.
 * Throws CubeError INVALID_FILE whose `where.path` names the first bad field; an unknown key
 * is named by its own path (`checkpoint.evrySteps`) with the nearest known keys as a hint.
 */
export function validateJobSpec(value: unknown, options: { file?: string } = {}): JobSpec {
  const parsed = JobSpecSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  // Zod reports unknown keys at their parent object; split them so each names its key.
  const issues = parsed.error.issues.flatMap((issue): z.core.$ZodIssue[] => {
    if (issue.code !== 'unrecognized_keys') return [issue];
    const parent = formatIssuePath(issue.path);
    return issue.keys.map((key) => {
      const near = nearestNames(key, knownKeys[parent] ?? []);
      return {
        code: 'custom',
        path: [...issue.path, key],
        input: undefined,
        message: `unknown key "${key}"${near.length > 0 ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : ''}`,
      };
    });
  });
  const error = schemaError(new z.ZodError(issues), {
    what: options.file ?? 'the job spec',
    ...(options.file === undefined ? {} : { file: options.file }),
  });
  throw new CubeError(error.code, error.message, {
    where: error.where,
    hint: 'see "Job spec" in docs/control-protocol.md for every field and its default',
    cause: error.cause,
  });
}

/**
 * Parses a job spec from YAML or JSON text and validates it (see {@link validateJobSpec}).
 * Text that is not YAML or JSON fails with FILE_UNREADABLE.
 */
export function parseJobSpec(
  text: string,
  options: { file?: string; format: 'yaml' | 'json' },
): JobSpec {
  const label = options.file ?? 'the job spec';
  let value: unknown;
  if (options.format === 'json') {
    try {
      value = JSON.parse(text) as unknown;
    } catch (cause) {
      throw new CubeError(
        'FILE_UNREADABLE',
        `${label} is not valid JSON: ${(cause as Error).message}`,
        {
          where: options.file === undefined ? {} : { file: options.file },
          cause,
        },
      );
    }
  } else {
    value = parseYamlText(text, {
      label,
      ...(options.file === undefined ? {} : { file: options.file }),
    });
  }
  return validateJobSpec(value, options.file === undefined ? {} : { file: options.file });
}
