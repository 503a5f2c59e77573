import { CubeError } from '../../core/index.ts';
import { levelIndexOfServer, nodeAt, type LevelKind, type Topology } from './topology.ts';

/** Where one server's checkpoint replicas (L2) go. */
export interface ReplicaPeer {
  readonly server: number;
  readonly serverAddress: string;
  readonly peer: number;
  readonly peerAddress: string;
  /** True when the peer sits in another failure domain (super-node, pod or leaf group). */
  readonly crossesDomain: boolean;
}

/** The outermost grouping below the cluster: a failure of it should not take both copies. */
function failureDomain(topology: Topology): LevelKind | null {
  const outer = topology.levels[1];
  return outer === undefined || outer.kind === 'server' ? null : outer.kind;
}

/**
 * Pairs every server with the peer that keeps its L2 replicas: another server, in another
 * super-node (or pod, or leaf group) where the cluster has them. Servers are interleaved
 * round-robin across their domains and each replicates to the next one in that cycle, so every
 * server receives exactly one other server's replicas and consecutive servers sit in different
 * domains; only when one domain holds more than half the servers do some pairs stay inside it
 * (`crossesDomain: false`).
 */
export function replicaPeers(topology: Topology, servers?: readonly number[]): ReplicaPeer[] {
  const all = servers ?? Array.from({ length: topology.cluster.serverCount }, (_, i) => i);
  const unique = [...new Set(all)];
  for (const s of unique)
    if (!Number.isInteger(s) || s < 0 || s >= topology.cluster.serverCount)
      throw new CubeError('INVALID_VALUE', `server index ${s} is not in ${topology.cluster.name}`, {
        where: { field: 'servers' },
      });
  if (unique.length < 2)
    throw new CubeError('INFEASIBLE', 'a replica peer needs at least two servers', {
      where: { field: 'servers' },
      hint: 'L2 replication needs another node; with one node only L1 and L3 exist',
    });
  const domain = failureDomain(topology);
  const domainOf = (s: number): number =>
    domain === null ? s : levelIndexOfServer(topology, domain, s);
  const groups = new Map<number, number[]>();
  for (const s of [...unique].sort((a, b) => a - b)) {
    const g = domainOf(s);
    groups.set(g, [...(groups.get(g) ?? []), s]);
  }
  const queues = [...groups.values()];
  const cycle: number[] = [];
  for (let round = 0; cycle.length < unique.length; round += 1)
    for (const q of queues) {
      const s = q[round];
      if (s !== undefined) cycle.push(s);
    }
  const address = (s: number): string => nodeAt(topology, 'server', s).address;
  return cycle
    .map((server, i) => {
      const peer = cycle[(i + 1) % cycle.length] as number;
      return {
        server,
        serverAddress: address(server),
        peer,
        peerAddress: address(peer),
        crossesDomain: domain !== null && domainOf(server) !== domainOf(peer),
      };
    })
    .sort((a, b) => a.server - b.server);
}
