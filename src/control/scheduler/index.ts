/**
 * The control plane's scheduler: gang placement (all ranks or none), topology-aware (a
 * tensor-parallel group inside one node, each pipeline inside one super-node where room allows,
 * the fewest super-nodes and pods), a priority queue, hot-spare replacement and L2 replica
 * peers. Pure functions over plain values: no I/O, no clock, no imports of the store or models.
 *
 * Conventions:
 * - A node runs one job at a time; a device counts only when its health is `ok`.
 * - Ranks are contiguous per node (`rank = node index × devicesPerNode + localRank`) and a
 *   layout is read in the Megatron-LM order (tp fastest, then dp, pp slowest; see
 *   `rankCoordinates`), so `devicesPerNode` must be a multiple of `tp`.
 * - Strict priority by default; `backfill: true` only uses nodes the waiting job cannot use.
 * - Ties go by node name in natural order (`node-2` before `node-10`), then by id.
 */
export type {
  Allocation,
  DeviceHealth,
  DeviceKind,
  NodeAssignment,
  NodeLabels,
  NodeRole,
  NodeState,
  ParallelLayout,
  Placement,
  PlacementRanks,
  RankAssignment,
  ScheduleOptions,
  SchedulerDevice,
  SchedulerJob,
  SchedulerJobSpec,
  SchedulerNode,
} from './types.ts';
export { placeJob } from './place-job.ts';
export type { PlaceResult } from './place-job.ts';
export { compareQueueOrder, scheduleQueue } from './schedule-queue.ts';
export type { ScheduleResult } from './schedule-queue.ts';
export { replaceNode } from './replace-node.ts';
export type { NodeReplacement } from './replace-node.ts';
export { replicaPeersFor } from './replica-peers-for.ts';
export type { JobReplicaPeer } from './replica-peers-for.ts';
export { rankCoordinates, specProblem } from './pipeline-groups.ts';
export type { RankCoordinates } from './pipeline-groups.ts';
