import type {
  DeviceKind,
  NodeRole,
  NodeState,
  ParallelLayout,
  Placement,
  SchedulerJob,
  SchedulerNode,
} from '../../../src/control/scheduler/index.ts';

/** One node with `devices` devices of `kind`; `unhealthy` lists device indices that failed. */
export function node(options: {
  readonly name: string;
  readonly superNode?: string;
  readonly pod?: string;
  readonly devices?: number;
  readonly kind?: DeviceKind;
  readonly role?: NodeRole;
  readonly state?: NodeState;
  readonly unhealthy?: readonly number[];
}): SchedulerNode {
  const labels: Record<string, string> = { rack: 'r1' };
  if (options.superNode !== undefined) labels.superNode = options.superNode;
  if (options.pod !== undefined) labels.pod = options.pod;
  return {
    id: `id-${options.name}`,
    name: options.name,
    state: options.state ?? 'ready',
    role: options.role ?? 'worker',
    labels,
    devices: Array.from({ length: options.devices ?? 2 }, (_, index) => ({
      index,
      kind: options.kind ?? 'cpu',
      health: options.unhealthy?.includes(index) === true ? ('failed' as const) : ('ok' as const),
    })),
  };
}

/**
 * A labelled cluster: `superNodes` super-nodes (`sn0`, `sn1`, ...) of `nodesPerSuperNode`
 * nodes each (`sn0-n0`, ...), `superNodesPerPod` super-nodes per pod (`pod0`, ...).
 */
export function cluster(options: {
  readonly superNodes: number;
  readonly nodesPerSuperNode: number;
  readonly devicesPerNode?: number;
  readonly superNodesPerPod?: number;
  readonly kind?: DeviceKind;
}): SchedulerNode[] {
  const perPod = options.superNodesPerPod ?? options.superNodes;
  const nodes: SchedulerNode[] = [];
  for (let s = 0; s < options.superNodes; s += 1)
    for (let n = 0; n < options.nodesPerSuperNode; n += 1)
      nodes.push(
        node({
          name: `sn${s}-n${n}`,
          superNode: `sn${s}`,
          pod: `pod${Math.floor(s / perPod)}`,
          devices: options.devicesPerNode ?? 2,
          kind: options.kind ?? 'cpu',
        }),
      );
  return nodes;
}

/** A queued job. */
export function job(options: {
  readonly id: string;
  readonly nodes: number;
  readonly devicesPerNode?: number;
  readonly deviceType?: DeviceKind;
  readonly priority?: number;
  readonly submittedAt?: string;
  readonly layout?: ParallelLayout;
}): SchedulerJob {
  return {
    id: options.id,
    priority: options.priority ?? 0,
    submittedAt: options.submittedAt ?? '2025-01-01T00:00:00.000Z',
    spec: {
      ranks: { nodes: options.nodes, devicesPerNode: options.devicesPerNode ?? 2 },
      deviceType: options.deviceType ?? 'cpu',
      layout: options.layout,
    },
  };
}

/** The super-node label of the node running `rank`. */
export function superNodeOfRank(
  placement: Placement,
  nodes: readonly SchedulerNode[],
  rank: number,
): string | undefined {
  const id = placement.ranks[rank]?.nodeId;
  return nodes.find((n) => n.id === id)?.labels.superNode;
}

/** The names of the placed nodes, in placement order. */
export function names(placement: Placement): string[] {
  return placement.nodes.map((n) => n.nodeName);
}
