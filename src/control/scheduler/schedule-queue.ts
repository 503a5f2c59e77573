import { indexCluster } from './cluster-index.ts';
import { placeOnIndex } from './place-job.ts';
import { count } from './text.ts';
import type {
  Allocation,
  Placement,
  ScheduleOptions,
  SchedulerJob,
  SchedulerNode,
} from './types.ts';

/** What one scheduling pass decided. */
export interface ScheduleResult {
  /** Jobs placed in this pass, in the order they were placed (priority order). */
  readonly placements: readonly { readonly jobId: string; readonly placement: Placement }[];
  /** Jobs still queued, in priority order, each with why. */
  readonly waiting: readonly { readonly jobId: string; readonly reason: string }[];
}

function submittedMs(job: SchedulerJob): number {
  const ms = typeof job.submittedAt === 'number' ? job.submittedAt : Date.parse(job.submittedAt);
  return Number.isNaN(ms) ? Infinity : ms;
}

/** Queue order: higher priority first, then the older submission, then the job id. */
export function compareQueueOrder(a: SchedulerJob, b: SchedulerJob): number {
  return (
    b.priority - a.priority ||
    submittedMs(a) - submittedMs(b) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/**
 * One scheduling pass over the queued jobs: in priority order (then oldest first), each job is
 * placed whole or not at all (see `placeJob`) on nodes that are neither allocated nor given to
 * a job earlier in the pass.
 *
 * Strict priority by default: once a job waits for room, every job behind it waits too, so a
 * big job is never starved by a stream of small ones. With `backfill: true`, jobs behind it may
 * still run, but only on nodes the waiting job cannot use at all (another device type, too few
 * healthy devices), so they never delay it. Jobs whose spec can never be placed, or that need
 * more nodes than the whole cluster has, wait without holding back the others.
 */
export function scheduleQueue(input: {
  readonly nodes: readonly SchedulerNode[];
  readonly jobs: readonly SchedulerJob[];
  readonly allocations: readonly Allocation[];
  readonly options?: ScheduleOptions;
}): ScheduleResult {
  const useSpares = input.options?.reserveSpares === false;
  const backfill = input.options?.backfill === true;
  const index = indexCluster(input.nodes, input.allocations);
  const claimed = new Map<string, string>();
  const reserved = new Map<string, string>();
  const placements: { jobId: string; placement: Placement }[] = [];
  const waiting: { jobId: string; reason: string }[] = [];
  let blocker: SchedulerJob | undefined;

  for (const job of [...input.jobs].sort(compareQueueOrder)) {
    const holds = { claimed, reserved: backfill ? reserved : new Map<string, string>() };
    const outcome = placeOnIndex(job, { index, holds, useSpares });
    if (outcome.kind === 'waiting' && outcome.why !== 'room') {
      waiting.push({ jobId: job.id, reason: outcome.reason });
      continue;
    }
    if (blocker !== undefined && !backfill) {
      const ahead =
        `waits behind ${blocker.id} (priority ${blocker.priority}, needs ` +
        `${count(blocker.spec.ranks.nodes, 'node')}): jobs start in priority order and ` +
        `backfill is off`;
      waiting.push({
        jobId: job.id,
        reason:
          outcome.kind === 'placed'
            ? `${ahead}; it would fit now`
            : `${ahead}; it does not fit now either: ${outcome.reason}`,
      });
      continue;
    }
    if (outcome.kind === 'waiting') {
      waiting.push({ jobId: job.id, reason: outcome.reason });
      blocker ??= job;
      for (const id of outcome.usableNodeIds) if (!reserved.has(id)) reserved.set(id, job.id);
      continue;
    }
    placements.push({ jobId: job.id, placement: outcome.placement });
    for (const n of outcome.placement.nodes) claimed.set(n.nodeId, job.id);
  }
  return { placements, waiting };
}
