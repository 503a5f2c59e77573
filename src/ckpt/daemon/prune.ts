/**
 * Removing a job's abandoned replicas at L2 (docs/checkpoint-format.md, "Timelines"): after a
 * restore of step R, the run carries a new timeline T, and every step newer than R from an older
 * timeline is dead. The restoring ranks prune their own L1 and L3; a node daemon prunes its L2
 * root and asks each peer to do the same (`prune` peer op), so that no peer keeps serving, or
 * later combines with new shards, a step of the abandoned run.
 */
import { z } from 'zod';
import type { LevelRoot } from '../fs-store.ts';
import { deleteStep } from '../retention.ts';
import { scanJob } from '../scan.ts';
import { stepSchema, timelineSchema } from '../schemas.ts';

/** What a prune request names: steps after `afterStep` (-1: all) of timelines below `timeline`. */
export const pruneRequestSchema = z.strictObject({
  afterStep: z.union([z.literal(-1), stepSchema]),
  timeline: timelineSchema,
});
export type PruneRequest = z.infer<typeof pruneRequestSchema>;

/** A step a prune removed. */
export interface PrunedStep {
  readonly step: number;
  /** Its timeline; null for a step directory with neither manifest nor valid record (torn). */
  readonly timeline: number | null;
}

/**
 * Deletes, from one level root, every step of `job` newer than `afterStep` whose timeline is
 * below `timeline` (manifest first, see `deleteStep`). A step of `timeline` or a newer one is
 * never touched, so the new run's checkpoints, complete or in flight, survive any prune. A torn
 * step directory without a record is removed too: the restoring ranks prune before any of them
 * saves again, so nothing of the new timeline can be in it yet.
 */
export async function pruneAbandonedSteps(
  root: LevelRoot,
  job: string,
  request: PruneRequest,
  options: { readonly signal?: AbortSignal } = {},
): Promise<PrunedStep[]> {
  const pruned: PrunedStep[] = [];
  for (const status of await scanJob(root, job, { level: 'L2', ...options })) {
    if (status.step <= request.afterStep) continue;
    if (status.timeline !== null && status.timeline >= request.timeline) continue;
    options.signal?.throwIfAborted();
    await deleteStep(root, job, status.step, options);
    pruned.push({ step: status.step, timeline: status.timeline });
  }
  return pruned;
}
