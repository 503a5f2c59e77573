import { circuitGbs } from './ocs-routes.ts';
import { intraPairGbs, meetingTier, nicShareGbs, oversubscriptionBelow } from './paths.ts';
import {
  childrenOf,
  rootNode,
  type LevelKind,
  type Topology,
  type TopologyNode,
} from './topology.ts';

/** The bisection bandwidth of a cluster and how it was found. */
export interface Bisection {
  /** What one half can send the other at once, one direction, GB/s: the minimum over the cuts considered. */
  readonly gbsPerDirection: number;
  /** The kind of the nodes the cuts split into halves. */
  readonly level: LevelKind;
  /** The worst cut: `sn0 sn3 | sn1 sn2`. */
  readonly cut: string;
  readonly cutsConsidered: number;
  readonly method: string;
}

/** Above this many top-level nodes, only the contiguous halving is considered. */
const exhaustiveLimit = 16;

/**
 * Bisection bandwidth: the cluster's top-level nodes (the first level with more than one node:
 * super-nodes, pods, leaf or rail groups, servers, or the devices of a lone server) are split
 * into two halves of equal node count; the bandwidth of a cut is what the smaller side can
 * push across it, one direction. With up to 16 nodes every balanced cut is tried, else the
 * contiguous halving (first half of the nodes against the second).
 * - devices of one server: full mesh |A|·|B| lanes; switch or PCIe min(|A|,|B|) x device bandwidth;
 * - servers of one super-node: min(|A|,|B|) devices x the super-node's per-device bandwidth;
 * - packet fabric groups: min over sides of the sum of NIC shares, divided by the
 *   oversubscription of every tier below the one the cut crosses (a fully loaded fabric);
 * - super-nodes: the OCS circuits crossing the cut, plus the packet fabric's share if any.
 */
export function bisectionOf(topology: Topology): Bisection {
  let node = rootNode(topology);
  let children = childrenOf(topology, node);
  while (children.length === 1 && children[0] !== undefined) {
    node = children[0];
    children = childrenOf(topology, node);
  }
  const level = children[0]?.kind ?? node.kind;
  if (children.length < 2)
    return {
      gbsPerDirection: 0,
      level,
      cut: '',
      cutsConsidered: 0,
      method: 'a single device has no bisection',
    };

  const capacity = cutCapacity(topology, node, children);
  const c = children.length;
  const half = Math.floor(c / 2);
  const cuts: number[][] = [];
  if (c <= exhaustiveLimit) {
    // Every subset of `half` nodes holding node 0 (each cut counted once).
    const pick = (start: number, chosen: number[]): void => {
      if (chosen.length === half) {
        cuts.push([...chosen]);
        return;
      }
      for (let i = start; i < c; i += 1) pick(i + 1, [...chosen, i]);
    };
    pick(1, [0]);
  } else cuts.push(Array.from({ length: half }, (_, i) => i));

  let best = { gbs: Infinity, side: [] as number[] };
  for (const side of cuts) {
    const gbs = capacity(new Set(side));
    if (gbs < best.gbs) best = { gbs, side };
  }
  const name = (i: number): string => children[i]?.address.split('/').pop() ?? String(i);
  const inA = new Set(best.side);
  const sideA = children.map((_, i) => i).filter((i) => inA.has(i));
  const sideB = children.map((_, i) => i).filter((i) => !inA.has(i));
  const list = (ids: number[]): string =>
    ids.length > 6
      ? `${name(ids[0] ?? 0)}..${name(ids[ids.length - 1] ?? 0)} (${ids.length})`
      : ids.map(name).join(' ');
  return {
    gbsPerDirection: best.gbs,
    level,
    cut: `${list(sideA)} | ${list(sideB)}`,
    cutsConsidered: cuts.length,
    method:
      c <= exhaustiveLimit
        ? `every balanced cut of the ${c} ${level} nodes; the minimum, one direction`
        : `the contiguous halving of the ${c} ${level} nodes, one direction`,
  };
}

interface SideSums {
  devices: number;
  nicGbs: number;
  superNodeGbs: number;
}

/** Returns a function giving the bandwidth across a cut (side A given as child positions). */
function cutCapacity(
  topology: Topology,
  parent: TopologyNode,
  children: readonly TopologyNode[],
): (sideA: ReadonlySet<number>) => number {
  const { cluster } = topology;
  const sums: SideSums[] = children.map((child) => sumsOf(topology, child));
  const total = (
    side: ReadonlySet<number>,
    inside: boolean,
    pick: (s: SideSums) => number,
  ): number => sums.reduce((acc, s, i) => (side.has(i) === inside ? acc + pick(s) : acc), 0);

  const first = children[0];
  if (first?.kind === 'device') {
    const run = cluster.runs.find(
      (r) => r.firstServer <= parent.firstServer && parent.firstServer < r.firstServer + r.count,
    );
    const model = run?.model;
    return (side) => {
      const a = side.size;
      const b = children.length - a;
      if (model === undefined) return 0;
      return model.intraServer.kind === 'full-mesh'
        ? a * b * intraPairGbs(model)
        : Math.min(a, b) * model.intraServer.gbsPerDirection;
    };
  }
  if (first?.kind === 'server' && parent.kind === 'super-node') {
    const sn = cluster.superNodes[parent.index];
    return (side) =>
      Math.min(
        total(side, true, (s) => s.devices),
        total(side, false, (s) => s.devices),
      ) * (sn?.gbsPerDirection ?? 0);
  }
  const second = children[1];
  const tier =
    first === undefined || second === undefined
      ? 0
      : meetingTier(topology, first.firstServer, second.firstServer);
  const packet = cluster.fabric === null ? 0 : 1 / oversubscriptionBelow(topology, tier);
  const packetAcross = (side: ReadonlySet<number>): number =>
    Math.min(
      total(side, true, (s) => s.nicGbs),
      total(side, false, (s) => s.nicGbs),
    ) * packet;
  if (first?.kind === 'super-node') {
    // Through the packet fabric the cut is at the top tier.
    const topPacket =
      cluster.fabric === null
        ? 0
        : 1 / oversubscriptionBelow(topology, (cluster.fabric.tiers.length ?? 1) - 1);
    return (side) => {
      let circuits = 0;
      for (const a of side)
        for (let b = 0; b < children.length; b += 1)
          if (!side.has(b))
            circuits += circuitGbs(topology, children[a]?.index ?? 0, children[b]?.index ?? 0);
      const viaPacket =
        Math.min(
          total(side, true, (s) => s.nicGbs),
          total(side, false, (s) => s.nicGbs),
        ) * topPacket;
      const egress = Math.min(
        total(side, true, (s) => s.superNodeGbs),
        total(side, false, (s) => s.superNodeGbs),
      );
      return Math.min(circuits + viaPacket, egress);
    };
  }
  return packetAcross;
}

function sumsOf(topology: Topology, node: TopologyNode): SideSums {
  const out: SideSums = { devices: 0, nicGbs: 0, superNodeGbs: 0 };
  const end = node.firstServer + node.serverCount;
  for (const run of topology.cluster.runs) {
    const lo = Math.max(run.firstServer, node.firstServer);
    const hi = Math.min(run.firstServer + run.count, end);
    if (hi <= lo) continue;
    const devices = (hi - lo) * run.devicesPerServer;
    out.devices += devices;
    out.nicGbs += devices * nicShareGbs(run.model);
    const sn = run.superNode === null ? undefined : topology.cluster.superNodes[run.superNode];
    out.superNodeGbs += devices * (sn?.gbsPerDirection ?? 0);
  }
  return out;
}
