import type { PlacementRanks, SchedulerNode } from './types.ts';

/** Where one of a job's nodes sends its L2 checkpoint replicas. */
export interface JobReplicaPeer {
  readonly nodeId: string;
  /** Another node of the job; null when the job has a single node (no L2, only L1 and L3). */
  readonly peerNodeId: string | null;
  /** True when the peer sits in another failure domain (super-node, else pod, else server). */
  readonly crossesDomain: boolean;
}

const domainLevels = ['superNode', 'pod', 'server'] as const;

/**
 * The L2 replica peer of each of a job's nodes, in placement order (the node of rank 0
 * first). The same idea as the topology's `replicaPeers`: the job's nodes are grouped by
 * failure domain (their `superNode` label; `pod` or `server` when no node has one), interleaved
 * round-robin across the domains, and each replicates to the next node in that cycle. Every
 * node then keeps exactly one other node's replicas, and a peer shares the domain only when
 * one domain holds more than half the job's nodes.
 */
export function replicaPeersFor(
  placement: PlacementRanks,
  nodes: readonly SchedulerNode[],
): JobReplicaPeer[] {
  const order: string[] = [];
  const seen = new Set<string>();
  for (const r of [...placement.ranks].sort((a, b) => a.rank - b.rank))
    if (!seen.has(r.nodeId)) {
      seen.add(r.nodeId);
      order.push(r.nodeId);
    }
  const [only] = order;
  if (order.length === 1 && only !== undefined)
    return [{ nodeId: only, peerNodeId: null, crossesDomain: false }];
  const labelsOf = new Map(nodes.map((n) => [n.id, n.labels]));
  const level = domainLevels.find((l) => order.some((id) => labelsOf.get(id)?.[l] !== undefined));
  const domainOf = (id: string): string | undefined =>
    level === undefined ? undefined : labelsOf.get(id)?.[level];
  const queues = new Map<string | undefined, string[]>();
  for (const id of order) {
    const d = domainOf(id);
    queues.set(d, [...(queues.get(d) ?? []), id]);
  }
  const cycle: string[] = [];
  for (let round = 0; cycle.length < order.length; round += 1)
    for (const queue of queues.values()) {
      const id = queue[round];
      if (id !== undefined) cycle.push(id);
    }
  const peerOf = new Map(cycle.map((id, i) => [id, cycle[(i + 1) % cycle.length] ?? id]));
  return order.map((nodeId) => {
    const peerNodeId = peerOf.get(nodeId) ?? nodeId;
    return {
      nodeId,
      peerNodeId,
      crossesDomain: level !== undefined && domainOf(nodeId) !== domainOf(peerNodeId),
    };
  });
}
