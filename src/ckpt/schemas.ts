import { z } from 'zod';

/** The three checkpoint levels: node memory, a peer's replica, durable storage. */
export const levels = ['L1', 'L2', 'L3'] as const;
export const levelSchema = z.enum(levels);
export type Level = z.infer<typeof levelSchema>;

/** The largest step the 10-digit directory name can hold. */
export const maxStep = 9_999_999_999;
/** The largest rank the 5-digit file name can hold. */
export const maxRank = 99_999;

export const jobIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a job id is 1 to 64 of A-Z a-z 0-9 . _ -')
  .refine((id) => !id.startsWith('.'), 'a job id must not start with "." (readers ignore those)');
export const stepSchema = z.int().min(0).max(maxStep);
export const rankSchema = z.int().min(0).max(maxRank);
export const worldSizeSchema = z
  .int()
  .min(1)
  .max(maxRank + 1);
/**
 * A checkpoint's timeline: a run counter that changes whenever training restarts from an older
 * step (docs/checkpoint-format.md, "Timelines"). Files written before timelines existed have
 * none and read as 0.
 */
export const timelineSchema = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

export const xxh3Schema = z.string().regex(/^[0-9a-f]{16}$/, 'xxh3 is 16 lowercase hex digits');

/**
 * A path relative to `<root>/<job>/`: forward slashes, no empty, `.` or `..` segment, no
 * hidden (temp) name, never absolute, so it cannot point outside the job's directory.
 */
export const relativeFileSchema = z
  .string()
  .min(1)
  .refine(
    (file) => file.split('/').every((part) => part !== '' && !part.startsWith('.')),
    'a file is a relative path inside the job directory (no "..", no hidden names, no leading "/")',
  );

/** How deep `extra` may nest: deeper input would overflow the stack of the recursive check. */
export const maxExtraDepth = 128;

/** True when `value` nests objects or arrays more than `max` deep (iterative: never recurses). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The trainer's non-tensor state: a JSON object, opaque to the engine (the Python client
 * writes `{format: "cube.state/1", tree: ...}`, see docs/checkpoint-format.md).
 */
export const extraSchema = z
  .unknown()
  .refine((value) => !nestedDeeperThan(value, maxExtraDepth), {
    message: `extra state is nested more than ${maxExtraDepth} levels deep`,
  })
  .pipe(z.record(z.string(), z.json()));

/** The shard record `rank-RRRRR.json` (format `cube.shard/1`). */
export const shardRecordSchema = z
  .object({
    format: z.literal('cube.shard/1'),
    job: jobIdSchema,
    step: stepSchema,
    rank: rankSchema,
    worldSize: worldSizeSchema,
    file: relativeFileSchema,
    bytes: z.int().min(0),
    xxh3: xxh3Schema,
    node: z.string().min(1),
    savedAt: z.iso.datetime({ offset: true }),
    timeline: timelineSchema.default(0),
    // A writer with no extra state may leave it out; the engine always has one.
    extra: extraSchema.default({}),
  })
  .refine((r) => r.rank < r.worldSize, {
    message: 'rank must be below worldSize',
    path: ['rank'],
  });
export type ShardRecord = Readonly<z.infer<typeof shardRecordSchema>>;

/** One shard as a manifest lists it. */
export const manifestShardSchema = z.object({
  rank: rankSchema,
  file: relativeFileSchema,
  bytes: z.int().min(0),
  xxh3: xxh3Schema,
  node: z.string().min(1),
  extra: extraSchema.default({}),
});
export type ManifestShard = Readonly<z.infer<typeof manifestShardSchema>>;

/** The parallel layout of the job; tp, pp, dp required, other dimensions (ep, cp) allowed. */
export const layoutSchema = z.looseObject({
  tp: z.int().min(1),
  pp: z.int().min(1),
  dp: z.int().min(1),
});
export type Layout = Readonly<z.infer<typeof layoutSchema>>;

/** The manifest `manifest.json` (format `cube.manifest/1`), written last. */
export const manifestSchema = z
  .object({
    format: z.literal('cube.manifest/1'),
    job: jobIdSchema,
    step: stepSchema,
    level: levelSchema,
    worldSize: worldSizeSchema,
    layout: layoutSchema,
    /** Every listed shard's record has this timeline: a manifest never mixes two. */
    timeline: timelineSchema.default(0),
    shards: z.array(manifestShardSchema),
    committedAt: z.iso.datetime({ offset: true }),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<number>();
    m.shards.forEach((shard, i) => {
      if (shard.rank >= m.worldSize)
        ctx.addIssue({
          code: 'custom',
          message: `rank ${shard.rank} is not below worldSize ${m.worldSize}`,
          path: ['shards', i, 'rank'],
        });
      if (seen.has(shard.rank))
        ctx.addIssue({
          code: 'custom',
          message: `rank ${shard.rank} is listed twice`,
          path: ['shards', i, 'rank'],
        });
      seen.add(shard.rank);
    });
  });
export type Manifest = Readonly<z.infer<typeof manifestSchema>>;
