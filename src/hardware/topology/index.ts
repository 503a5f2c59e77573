export type {
  Circuit,
  Cluster,
  FabricTier,
  OpticalCircuitSwitch,
  PacketFabric,
  ServerRun,
  SuperNode,
} from './cluster.ts';
export { clusterFileSchema, type ClusterFile } from './cluster-schema.ts';
export { clusterFromDescription, loadClusterFile } from './load-cluster.ts';
export { defaultCluster } from './build-cluster.ts';
export {
  ancestorsOf,
  childrenOf,
  createTopology,
  deviceAddress,
  deviceInfo,
  findNode,
  nodeAt,
  resolveDevice,
  rootNode,
  type DeviceInfo,
  type Level,
  type LevelKind,
  type Topology,
  type TopologyNode,
} from './topology.ts';
export {
  nicShareGbs,
  pathBetween,
  type DevicePath,
  type Hop,
  type HopKind,
  type Route,
  type RouteKind,
} from './paths.ts';
export type {
  AlgorithmKind,
  CollectiveOp,
  CostBreakdown,
  CostTerm,
  PhaseCost,
} from './collective-cost.ts';
export {
  busBandwidthFactor,
  collectiveOps,
  estimateCollective,
  type CollectiveCandidate,
  type CollectiveEstimate,
  type CollectiveRequest,
} from './collectives.ts';
export { meshRings } from './ring.ts';
export { bisectionOf, type Bisection } from './bisection.ts';
export { renderHierarchy, type HierarchyPicture } from './render-tree.ts';
export { formatClusterSummary, summarizeCluster, type ClusterSummary } from './summary.ts';
export { replicaPeers, type ReplicaPeer } from './replica-peers.ts';
