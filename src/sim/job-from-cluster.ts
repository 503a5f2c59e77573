import { createTopology, replicaPeers, type Cluster } from '../hardware/index.ts';
import type { SimJob } from './job.ts';

/**
 * A simulated job that fills `cluster`: its nodes are the cluster's servers, a switch failure
 * takes down one tier-1 group (a leaf or rail group of the packet fabric; a super-node when the
 * cluster has super-nodes and no fabric), each group has one tier-1 switch per NIC (per rail),
 * and L2 replicas go where `replicaPeers` puts them. The step time and the checkpoint size come
 * from the caller (the planner, or a measured step time).
 */
export function jobFromCluster(
  cluster: Cluster,
  options: { name: string; stepTimeS: number; checkpointBytesPerGpu: number },
): SimJob {
  const first = cluster.runs[0];
  if (first === undefined) throw new Error('a cluster has at least one server run');
  const gpusPerNode = Math.max(...cluster.runs.map((r) => r.devicesPerServer));
  const nodes = cluster.serverCount;
  const tier1 = cluster.fabric?.tiers[0]?.serversPerGroup ?? null;
  const superNodeSize = cluster.superNodes[0]?.serverCount ?? null;
  const nodesPerSwitch = Math.min(
    nodes,
    tier1 ?? (cluster.fabric === null && superNodeSize !== null ? superNodeSize : nodes),
  );
  const replicaPeerOf =
    nodes >= 2
      ? replicaPeers(createTopology(cluster))
          .sort((a, b) => a.server - b.server)
          .map((r) => r.peer)
      : undefined;
  return {
    name: options.name,
    stepTimeS: options.stepTimeS,
    gpus: cluster.deviceCount,
    gpusPerNode,
    nodes,
    nodesPerSwitch,
    // One tier-1 switch per rail above a fabric group; a super-node's own fabric is one unit.
    switchesPerGroup: cluster.fabric === null ? 1 : Math.max(1, first.model.nics.count),
    checkpointBytesPerGpu: options.checkpointBytesPerGpu,
    snapshotGBsPerGpu: first.model.hostLinkGbsPerDirection,
    nicGBsPerNode: (first.model.nics.count * first.model.nics.gbps) / 8,
    ...(replicaPeerOf === undefined ? {} : { replicaPeerOf }),
  };
}
