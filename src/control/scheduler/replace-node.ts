import { CubeError } from '../../core/index.ts';
import {
  assessNode,
  describeUnusable,
  devicesPhrase,
  indexCluster,
  type Demand,
  type IndexedNode,
} from './cluster-index.ts';
import { compareNames, rankRange } from './text.ts';
import type {
  Allocation,
  PlacementRanks,
  RankAssignment,
  SchedulerJob,
  SchedulerNode,
} from './types.ts';

/** The node that takes over a failed node's ranks, or why there is none yet. */
export type NodeReplacement =
  | {
      readonly kind: 'replaced';
      readonly nodeId: string;
      readonly nodeName: string;
      /** `spare`: a hot spare; `free`: an unallocated worker node. */
      readonly source: 'spare' | 'free';
      /** The failed node's ranks, same rank numbers and local ranks, on the new node. */
      readonly ranks: readonly RankAssignment[];
      /** One line for the event log, e.g. `spare-1 (hot spare in sn0) takes ranks 4-7 of node-3`. */
      readonly explanation: string;
    }
  | { readonly kind: 'waiting'; readonly waitReason: string };

/**
 * Finds the node to take over a failed node's ranks: a ready hot spare first, then any free
 * ready worker node, each with the job's device type and enough healthy devices and held by no
 * job. Among candidates of the same source: one in the failed node's super-node first, then
 * one in a super-node the job already uses, then one in the failed node's pod, then by name.
 * The new node runs the same rank numbers with the same local ranks. Throws `INVALID_VALUE`
 * when the failed node runs none of the job's ranks.
 */
export function replaceNode(input: {
  readonly job: Pick<SchedulerJob, 'id' | 'spec'>;
  readonly placement: PlacementRanks;
  readonly failedNodeId: string;
  readonly nodes: readonly SchedulerNode[];
  readonly allocations: readonly Allocation[];
}): NodeReplacement {
  const { job, placement, failedNodeId } = input;
  const moving = placement.ranks
    .filter((r) => r.nodeId === failedNodeId)
    .sort((a, b) => a.rank - b.rank);
  if (moving.length === 0)
    throw new CubeError(
      'INVALID_VALUE',
      `node ${failedNodeId} runs none of the ranks of job ${job.id}, so there is nothing to replace`,
      { where: { node: failedNodeId, field: 'failedNodeId' } },
    );
  const index = indexCluster(input.nodes, input.allocations);
  const failed = index.byId.get(failedNodeId);
  const failedName = failed?.node.name ?? failedNodeId;
  const demand: Demand = {
    // No job may hold the replacement, not even this one (its nodes already run ranks).
    jobId: undefined,
    deviceType: job.spec.deviceType,
    devicesPerNode: job.spec.ranks.devicesPerNode,
  };
  const jobNodeIds = new Set(placement.ranks.map((r) => r.nodeId));
  const jobSuperNodes = new Set(
    [...jobNodeIds]
      .filter((id) => id !== failedNodeId)
      .map((id) => index.byId.get(id)?.superNode)
      .filter((s): s is string => s !== undefined),
  );
  const proximity = (n: IndexedNode): number => {
    if (failed?.superNode !== undefined && n.superNode === failed.superNode) return 0;
    if (n.superNode !== undefined && jobSuperNodes.has(n.superNode)) return 1;
    if (failed?.pod !== undefined && n.pod === failed.pod) return 2;
    return 3;
  };
  const assessed = index.nodes
    .filter((n) => n.node.id !== failedNodeId && !jobNodeIds.has(n.node.id))
    .map((n) => ({
      n,
      verdict: assessNode(n, { demand, allocatedTo: index.allocatedTo, useSpares: true }),
    }));
  const usable = assessed.filter((a) => a.verdict.kind === 'usable').map((a) => a.n);
  const best = (role: 'spare' | 'worker'): IndexedNode | undefined =>
    usable
      .filter((n) => n.node.role === role)
      .sort((a, b) => proximity(a) - proximity(b) || compareNames(a.node.name, b.node.name))[0];
  const spare = best('spare');
  const chosen = spare ?? best('worker');
  if (chosen === undefined) {
    const describe = (role: 'spare' | 'worker'): string => {
      const { withDevices, lacking } = describeUnusable(
        assessed.filter((a) => a.n.node.role === role),
        demand,
      );
      const all = [
        ...(withDevices.length === 0 ? [] : [withDevices.join(', ')]),
        ...(lacking === null ? [] : [lacking]),
      ];
      return all.length === 0 ? '' : ` (${all.join('; ')})`;
    };
    return {
      kind: 'waiting',
      waitReason:
        `no node can take ${rankRange(moving.map((r) => r.rank))} of ${failedName}, which needs ` +
        `${devicesPhrase(demand)}: no ready spare has them${describe('spare')}, and no free ` +
        `ready worker node has them${describe('worker')}`,
    };
  }
  const where = chosen.superNode === undefined ? '' : ` in ${chosen.superNode}`;
  const sameSuperNode =
    failed?.superNode !== undefined && chosen.superNode === failed.superNode
      ? ', the failed node’s super-node'
      : '';
  const kindText = spare === undefined ? 'free worker node' : 'hot spare';
  return {
    kind: 'replaced',
    nodeId: chosen.node.id,
    nodeName: chosen.node.name,
    source: spare === undefined ? 'free' : 'spare',
    ranks: moving.map((r) => ({ rank: r.rank, nodeId: chosen.node.id, localRank: r.localRank })),
    explanation:
      `${chosen.node.name} (${kindText}${where}${sameSuperNode}) takes ` +
      `${rankRange(moving.map((r) => r.rank))} of ${failedName}` +
      (spare === undefined ? `; no ready spare had ${devicesPhrase(demand)}` : ''),
  };
}
