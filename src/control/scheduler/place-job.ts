import {
  assessNode,
  describeShortage,
  devicesPhrase,
  indexCluster,
  type ClusterIndex,
  type Demand,
  type Holds,
  type IndexedNode,
} from './cluster-index.ts';
import { pipelineGroups, specProblem } from './pipeline-groups.ts';
import { groupBySuperNode, selectSuperNodes, type SuperNodeRoom } from './select-super-nodes.ts';
import { compareNames, count } from './text.ts';
import type {
  Allocation,
  NodeAssignment,
  Placement,
  RankAssignment,
  ScheduleOptions,
  SchedulerJob,
  SchedulerJobSpec,
  SchedulerNode,
} from './types.ts';

/** A job placed whole, or why it waits. */
export type PlaceResult =
  | { readonly kind: 'placed'; readonly placement: Placement }
  | { readonly kind: 'waiting'; readonly reason: string };

/** The outcome of one attempt inside a scheduling pass. */
export type PlaceOutcome =
  | { readonly kind: 'placed'; readonly placement: Placement }
  | {
      readonly kind: 'waiting';
      readonly reason: string;
      /**
       * `spec`: the spec can never be placed; `never`: the cluster, even idle, has too few
       * nodes for it; `room`: it waits for nodes to free up (only these hold back others).
       */
      readonly why: 'spec' | 'never' | 'room';
      /** The ids of the nodes it could use now (too few of them). */
      readonly usableNodeIds: readonly string[];
    };

/**
 * Places one job whole on the usable nodes of `index` (see `placeJob`), leaving out the
 * nodes in `holds`. The building block of `scheduleQueue`.
 */
export function placeOnIndex(
  job: Pick<SchedulerJob, 'id' | 'spec'>,
  options: { readonly index: ClusterIndex; readonly holds?: Holds; readonly useSpares: boolean },
): PlaceOutcome {
  const { index, holds, useSpares } = options;
  const spec = job.spec;
  const problem = specProblem(spec);
  if (problem !== null) return { kind: 'waiting', reason: problem, why: 'spec', usableNodeIds: [] };
  const demand: Demand = {
    jobId: job.id,
    deviceType: spec.deviceType,
    devicesPerNode: spec.ranks.devicesPerNode,
  };
  const assessed = index.nodes.map((n) => ({
    n,
    verdict: assessNode(n, { demand, allocatedTo: index.allocatedTo, holds, useSpares }),
  }));
  const usable = assessed.filter((a) => a.verdict.kind === 'usable').map((a) => a.n);
  const needed = spec.ranks.nodes;
  if (usable.length < needed) {
    const reason = describeShortage({ demand, nodesNeeded: needed, assessed, useSpares });
    const capable = index.nodes.filter(
      (n) =>
        n.node.state !== 'left' &&
        (useSpares || n.node.role === 'worker') &&
        (n.total.get(demand.deviceType) ?? 0) >= demand.devicesPerNode,
    ).length;
    const usableNodeIds = usable.map((n) => n.node.id);
    if (capable >= needed) return { kind: 'waiting', reason, why: 'room', usableNodeIds };
    const kindOfNode = useSpares ? 'node' : 'worker node';
    const devices = count(demand.devicesPerNode, `${demand.deviceType} device`);
    const anyOfKind = index.nodes.some(
      (n) => n.node.state !== 'left' && (n.total.get(demand.deviceType) ?? 0) > 0,
    );
    const inCluster = !anyOfKind
      ? ''
      : capable === 0
        ? `; no ${kindOfNode} in the cluster has ${devices}`
        : `; the cluster has only ${count(capable, kindOfNode)} with ${devices}`;
    return {
      kind: 'waiting',
      reason:
        `${reason}${inCluster}, so the job waits for more nodes to join ` +
        `and does not hold back other jobs`,
      why: 'never',
      usableNodeIds,
    };
  }
  return { kind: 'placed', placement: arrange(spec, { usable, useSpares }) };
}

/**
 * Places one job whole (every rank or none) on `ready` worker nodes of its device type with
 * at least `devicesPerNode` healthy devices, not allocated to another job; spares are kept in
 * reserve unless `reserveSpares: false`. The placement keeps each tensor-parallel group inside
 * one node, each pipeline inside one super-node where the room allows, and spans the fewest
 * super-nodes (then pods); ties go by node name.
 */
export function placeJob(options: {
  readonly job: Pick<SchedulerJob, 'id' | 'spec'>;
  readonly nodes: readonly SchedulerNode[];
  readonly allocations: readonly Allocation[];
  readonly options?: Pick<ScheduleOptions, 'reserveSpares'>;
}): PlaceResult {
  const outcome = placeOnIndex(options.job, {
    index: indexCluster(options.nodes, options.allocations),
    useSpares: options.options?.reserveSpares === false,
  });
  return outcome.kind === 'placed' ? outcome : { kind: 'waiting', reason: outcome.reason };
}

/** Splits the pipeline groups over the chosen super-nodes and names the node of every position. */
function assignPositions(
  groups: readonly (readonly number[])[],
  rooms: readonly SuperNodeRoom[],
  needed: number,
): IndexedNode[] {
  const remaining = rooms.map((r) => r.nodes.length);
  const positionsOf = rooms.map((): number[] => []);
  const deferred: (readonly number[])[] = [];
  for (const group of groups) {
    const i = remaining.findIndex((left) => left >= group.length);
    if (i < 0) {
      deferred.push(group);
      continue;
    }
    positionsOf[i]?.push(...group);
    remaining[i] = (remaining[i] ?? 0) - group.length;
  }
  // Groups too big for any room left are cut where the most room is, in stage order, so
  // consecutive stages stay together as far as the room goes.
  for (const group of deferred) {
    let from = 0;
    while (from < group.length) {
      let i = 0;
      for (let j = 1; j < remaining.length; j += 1)
        if ((remaining[j] ?? 0) > (remaining[i] ?? 0)) i = j;
      const take = Math.min(remaining[i] ?? 0, group.length - from);
      positionsOf[i]?.push(...group.slice(from, from + take));
      remaining[i] = (remaining[i] ?? 0) - take;
      from += take;
    }
  }
  const nodeAt = new Array<IndexedNode>(needed);
  rooms.forEach((room, i) => {
    const positions = (positionsOf[i] ?? []).sort((a, b) => a - b);
    positions.forEach((p, j) => {
      const n = room.nodes[j];
      if (n !== undefined) nodeAt[p] = n;
    });
  });
  return nodeAt;
}

/** Chooses the nodes and rank order among enough usable nodes, and explains it. */
function arrange(
  spec: SchedulerJobSpec,
  context: { readonly usable: readonly IndexedNode[]; readonly useSpares: boolean },
): Placement {
  const { usable } = context;
  const needed = spec.ranks.nodes;
  const devicesPerNode = spec.ranks.devicesPerNode;
  const rooms = groupBySuperNode(usable);
  const groups = pipelineGroups(spec);
  const unitSize = groups[0]?.length ?? 1;
  const uniform = groups.every((g) => g.length === unitSize);
  const chosen =
    (uniform && unitSize > 1
      ? selectSuperNodes(rooms, { unitSize, unitsNeeded: groups.length })
      : null) ??
    selectSuperNodes(rooms, { unitSize: 1, unitsNeeded: needed }) ??
    [];
  const nodeAt = assignPositions(groups, chosen, needed);

  const nodes: NodeAssignment[] = [];
  const ranks: RankAssignment[] = [];
  nodeAt.forEach((n, position) => {
    const localRanks = Array.from({ length: devicesPerNode }, (_, i) => i);
    const nodeRanks = localRanks.map((local) => position * devicesPerNode + local);
    const healthy = n.healthy.get(spec.deviceType) ?? [];
    nodes.push({
      nodeId: n.node.id,
      nodeName: n.node.name,
      ranks: nodeRanks,
      localRanks,
      deviceIndices: healthy.slice(0, devicesPerNode),
    });
    for (const local of localRanks)
      ranks.push({ rank: nodeRanks[local] ?? 0, nodeId: n.node.id, localRank: local });
  });
  const superNodes = new Set(nodeAt.map((n) => n.superNode));
  const pods = new Set(nodeAt.map((n) => n.pod));
  return {
    nodes,
    ranks,
    worldSize: needed * devicesPerNode,
    devicesPerNode,
    deviceType: spec.deviceType,
    superNodesSpanned: superNodes.size,
    podsSpanned: pods.size,
    explanation: explain(spec, { nodeAt, rooms, usable, useSpares: context.useSpares }),
  };
}

/** The lines `cube jobs show` prints under the placement. */
function explain(
  spec: SchedulerJobSpec,
  context: {
    readonly nodeAt: readonly IndexedNode[];
    readonly rooms: readonly SuperNodeRoom[];
    readonly usable: readonly IndexedNode[];
    readonly useSpares: boolean;
  },
): string[] {
  const { nodeAt, rooms, usable, useSpares } = context;
  const needed = spec.ranks.nodes;
  const devicesPerNode = spec.ranks.devicesPerNode;
  const world = needed * devicesPerNode;
  const labelled = nodeAt.some((n) => n.superNode !== undefined);
  const lines: string[] = [];
  const layout = spec.layout;
  if (layout === undefined) {
    lines.push(`no layout given: ranks fill each node in order (${devicesPerNode} per node)`);
  } else {
    lines.push(
      layout.tp > 1
        ? `tp=${layout.tp} groups fit inside one node (${count(devicesPerNode, 'device')} per node)`
        : 'tp=1: no tensor-parallel group to keep together',
    );
    if (layout.pp > 1) {
      const stage = layout.tp * layout.dp;
      const pairs = world - stage;
      let crossNode = 0;
      let crossSuperNode = 0;
      for (let rank = 0; rank + stage < world; rank += 1) {
        const a = nodeAt[Math.floor(rank / devicesPerNode)];
        const b = nodeAt[Math.floor((rank + stage) / devicesPerNode)];
        if (a !== b) crossNode += 1;
        if (a?.superNode !== b?.superNode) crossSuperNode += 1;
      }
      const pairsText = count(pairs, 'pipeline neighbour pair');
      if (crossNode === 0) lines.push(`pp=${layout.pp}: all ${pairsText} share a node`);
      else if (!labelled)
        lines.push(
          `pp=${layout.pp}: consecutive stages on consecutive nodes (no super-node labels)`,
        );
      else if (crossSuperNode === 0)
        lines.push(`pp=${layout.pp}: all ${pairsText} stay inside one super-node`);
      else
        lines.push(
          `pp=${layout.pp}: ${crossSuperNode} of ${pairsText} cross super-nodes ` +
            `(too little room to keep every pipeline inside one)`,
        );
    }
    if (layout.dp > 1) {
      // A data-parallel group: the ranks with the same tp and pp coordinates.
      let widestNodes = 0;
      let widestSuperNodes = 0;
      for (let pp = 0; pp < layout.pp; pp += 1)
        for (let tp = 0; tp < layout.tp; tp += 1) {
          const members = new Set<IndexedNode | undefined>();
          for (let dp = 0; dp < layout.dp; dp += 1) {
            const rank = tp + layout.tp * (dp + layout.dp * pp);
            members.add(nodeAt[Math.floor(rank / devicesPerNode)]);
          }
          widestNodes = Math.max(widestNodes, members.size);
          widestSuperNodes = Math.max(
            widestSuperNodes,
            new Set([...members].map((n) => n?.superNode)).size,
          );
        }
      lines.push(
        `dp=${layout.dp}: a data-parallel group spans at most ${count(widestNodes, 'node')}` +
          (labelled ? ` in ${count(widestSuperNodes, 'super-node')}` : ''),
      );
    }
  }
  const nodesText = count(needed, 'node');
  if (!labelled) {
    lines.push(`${nodesText} (no super-node labels: chosen by name)`);
  } else {
    const perSuperNode = new Map<string, number>();
    for (const n of nodeAt) {
      const key = n.superNode ?? 'unlabelled';
      perSuperNode.set(key, (perSuperNode.get(key) ?? 0) + 1);
    }
    const podNames = [...new Set(nodeAt.map((n) => n.pod))]
      .filter((p): p is string => p !== undefined)
      .sort(compareNames);
    const withRoom = rooms.filter((r) => r.superNode !== undefined && r.nodes.length >= needed);
    if (perSuperNode.size === 1) {
      const [only] = perSuperNode.keys();
      lines.push(
        `${nodesText} in 1 super-node (${[only, ...podNames].join(', ')}); ` +
          `${count(withRoom.length, 'super-node')} had room`,
      );
    } else {
      const split = [...perSuperNode].map(([k, v]) => `${k}: ${v}`).join(', ');
      lines.push(
        `${nodesText} across ${perSuperNode.size} super-nodes (${split})` +
          (podNames.length === 0
            ? ''
            : ` and ${count(podNames.length, 'pod')} (${podNames.join(', ')})`) +
          `; ` +
          `no single super-node had ${nodesText} free`,
      );
    }
  }
  lines.push(
    `ranks 0-${world - 1}: rank = node index × ${devicesPerNode} + local rank ` +
      `(rank 0 on ${nodeAt[0]?.node.name})`,
  );
  const demand: Demand = { jobId: undefined, deviceType: spec.deviceType, devicesPerNode };
  lines.push(
    `chosen from ${count(usable.length, useSpares ? 'free ready node' : 'free ready worker node')} ` +
      `with ${devicesPhrase(demand)}`,
  );
  return lines;
}
