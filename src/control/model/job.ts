import { z } from 'zod';
import { JobIdSchema } from './ids.ts';
import type { Immutable } from './immutable.ts';
import { JobSpecSchema } from './job-spec.ts';

/**
 * `queued` -> `scheduled` -> `running` -> (`recovering` -> `running`)* -> `succeeded` |
 * `failed` | `cancelled`.
 */
export const JobStateSchema = z.enum([
  'queued',
  'scheduled',
  'running',
  'recovering',
  'succeeded',
  'failed',
  'cancelled',
]);
export type JobState = z.output<typeof JobStateSchema>;

/** The states a job never leaves. */
export const terminalJobStates: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/** True when a job in `state` has ended. */
export function isTerminalJobState(state: JobState): boolean {
  return terminalJobStates.includes(state);
}

/** Where one rank runs. */
export const RankPlacementSchema = z.strictObject({
  rank: z.int().min(0),
  nodeId: z.string().min(1),
  localRank: z.int().min(0),
});
export type RankPlacement = Immutable<z.output<typeof RankPlacementSchema>>;

/** Where every rank of a job runs, one entry per rank (in rank order). */
export const PlacementSchema = z.array(RankPlacementSchema);
export type Placement = Immutable<z.output<typeof PlacementSchema>>;

/** A job as the control plane knows it. Times are epoch milliseconds. */
export const JobSchema = z.strictObject({
  id: JobIdSchema,
  spec: JobSpecSchema,
  state: JobStateSchema,
  /** 0, 1, ...: one per (re)launch of the gang. */
  attempt: z.int().min(0),
  restarts: z.int().min(0),
  placement: PlacementSchema.nullable(),
  /** Why the scheduler placed the ranks where they are, one line each (`cube jobs show`). */
  placementExplanation: z.array(z.string()),
  /** Why the job waits, or why it ended. */
  reason: z.string().nullable(),
  createdAt: z.int(),
  updatedAt: z.int(),
  startedAt: z.int().nullable(),
  endedAt: z.int().nullable(),
  /** The id of the API token that submitted the job (absent for jobs from before roles). */
  owner: z.string().optional(),
});
export type Job = Immutable<z.output<typeof JobSchema>>;
