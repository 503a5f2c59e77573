import { z } from 'zod';
import type { Immutable } from './immutable.ts';

/** The checkpoint levels: L1 local memory, L2 a peer's memory, L3 durable storage. */
export const CheckpointLevelSchema = z.enum(['L1', 'L2', 'L3']);
export type CheckpointLevel = z.output<typeof CheckpointLevelSchema>;

/** One progress report of one rank, for loss and throughput curves. `at` is epoch ms. */
export const ProgressSampleSchema = z.strictObject({
  jobId: z.string().min(1),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  step: z.int().min(0),
  loss: z.number().nullable(),
  tokensPerS: z.number().min(0).nullable(),
  at: z.int(),
});
export type ProgressSample = Immutable<z.output<typeof ProgressSampleSchema>>;

/** A checkpoint committed for a job at a step and level. `at` is epoch ms. */
export const CheckpointRecordSchema = z.strictObject({
  jobId: z.string().min(1),
  step: z.int().min(0),
  level: CheckpointLevelSchema,
  at: z.int(),
});
export type CheckpointRecord = Immutable<z.output<typeof CheckpointRecordSchema>>;
