/**
 * The job the simulator runs: plain numbers, no planner. `src/sim/from-plan.ts` and
 * `jobFromCluster` fill it from a plan and a cluster; tests write it by hand.
 */
export interface SimJob {
  /** The model's id or name, for reports. */
  readonly name: string;
  /** Wall-clock seconds of one training step. */
  readonly stepTimeS: number;
  /** Ranks in the gang (one per GPU). */
  readonly gpus: number;
  readonly gpusPerNode: number;
  /** Nodes the job occupies (servers); spares are extra. */
  readonly nodes: number;
  /** Nodes below one tier-1 switch: what a switch failure takes down. */
  readonly nodesPerSwitch: number;
  /** Tier-1 switches above each group of `nodesPerSwitch` nodes (one per rail). */
  readonly switchesPerGroup: number;
  /** Bytes of model and optimizer state one GPU holds: what its checkpoint shard writes. */
  readonly checkpointBytesPerGpu: number;
  /** Device-to-host bandwidth of one GPU, GB/s: the L1 snapshot and the L1 restore. */
  readonly snapshotGBsPerGpu: number;
  /** One node's scale-out (NIC) bandwidth, GB/s, one direction: L2 replication by default. */
  readonly nicGBsPerNode: number;
  /**
   * For each node, the node that keeps its L2 replica (`replicaPeers` of the topology); absent:
   * node i replicates to the first node of the next switch group, (i + nodesPerSwitch) mod nodes.
   */
  readonly replicaPeerOf?: readonly number[];
}

/** How many tier-1 switches the job's nodes hang below. */
export function switchCount(job: SimJob): number {
  return Math.ceil(job.nodes / job.nodesPerSwitch) * job.switchesPerGroup;
}

/** The node holding node `node`'s L2 replica; null when the job has a single node. */
export function replicaPeer(job: SimJob, node: number): number | null {
  if (job.nodes < 2) return null;
  const explicit = job.replicaPeerOf?.[node];
  if (explicit !== undefined) return explicit;
  const step = job.nodesPerSwitch < job.nodes ? job.nodesPerSwitch : 1;
  return (node + step) % job.nodes;
}
