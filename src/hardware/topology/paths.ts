import { CubeError } from '../../core/index.ts';
import { superNodeRoute } from './ocs-routes.ts';
import type { ServerSpec } from '../server.ts';
import {
  ancestorsOf,
  locateDevice,
  resolveDevice,
  type DeviceLocation,
  deviceAddress,
  type LevelKind,
  type Topology,
} from './topology.ts';

/**
 * What one hop of a path is:
 * - `intra-server`: the server's own accelerator links (full mesh, switch or PCIe);
 * - `pxn`: an intra-server hop to the GPU whose NIC sits on the destination's rail;
 * - `super-node`: the super-node's all-to-all fabric;
 * - `nic`: a NIC and its tier-1 (leaf or rail) switch;
 * - `switch`: up to a higher fabric tier and back down;
 * - `ocs-circuit`: the optical circuits between two super-nodes, shared by all their flows.
 */
export type HopKind = 'intra-server' | 'pxn' | 'super-node' | 'nic' | 'switch' | 'ocs-circuit';

/** One hop of a route, with what one flow gets on it. */
export interface Hop {
  readonly kind: HopKind;
  /** What the hop crosses, for a human: `server (full mesh)`, `rail`, `spine`, `ocs sn0-sn1`. */
  readonly level: string;
  /** Bandwidth this flow can get on the hop, one direction, GB/s. */
  readonly gbsPerDirection: number;
  readonly latencyUs: number;
  /** Set when the bandwidth is a pool shared by every flow that crosses it (OCS circuits). */
  readonly sharedBy?: string;
}

/** How two devices reach each other. */
export type RouteKind =
  'same-device' | 'intra-server' | 'super-node' | 'packet' | 'packet-pxn' | 'ocs' | 'ocs-relay';

/** How one flow travels between two devices: its hops, bottleneck and latency. */
export interface Route {
  readonly kind: RouteKind;
  readonly hops: readonly Hop[];
  /** The bottleneck bandwidth of one flow, one direction, GB/s. */
  readonly gbsPerDirection: number;
  /** Small-message latency, microseconds: the sum over hops. */
  readonly latencyUs: number;
  /** The `level` of the bottleneck hop. */
  readonly bottleneck: string;
}

/** A route between two named devices, as `pathBetween` reports it. */
export interface DevicePath extends Route {
  readonly from: { readonly index: number; readonly address: string };
  readonly to: { readonly index: number; readonly address: string };
  /** The lowest level of the tree holding both devices. */
  readonly commonLevel: LevelKind;
}

/** Each accelerator's share of its server's NIC bandwidth, GB/s per direction. */
export function nicShareGbs(model: ServerSpec): number {
  return (model.nics.count * model.nics.gbps) / 8 / model.acceleratorsPerServer;
}

/** Bandwidth between two accelerators of one server, one direction, GB/s. */
export function intraPairGbs(model: ServerSpec): number {
  const f = model.intraServer;
  return f.kind === 'full-mesh' ? f.laneGbsPerDirection * f.lanesPerPeer : f.gbsPerDirection;
}

/** The NIC (and rail) a local accelerator uses: accelerators spread evenly over NICs. */
export function nicIndex(model: ServerSpec, local: number): number {
  return Math.floor((local * model.nics.count) / model.acceleratorsPerServer);
}

/** A short name for a server's intra-server fabric. */
export function fabricWord(model: ServerSpec): string {
  const kind = model.intraServer.kind;
  return kind === 'full-mesh' ? 'full mesh' : kind;
}

/**
 * The path between two devices (indices or addresses): hops, bottleneck bandwidth per
 * direction and latency, and the lowest level holding both.
 */
export function pathBetween(
  topology: Topology,
  from: number | string,
  to: number | string,
): DevicePath {
  const a = resolveDevice(topology, from);
  const b = resolveDevice(topology, to);
  const up = ancestorsOf(topology, a);
  const vp = ancestorsOf(topology, b);
  let common: LevelKind = 'cluster';
  for (let i = 0; i < up.length; i += 1) {
    const x = up[i];
    if (x === undefined || vp[i]?.index !== x.index) break;
    common = x.kind;
  }
  return {
    ...routeBetween(topology, a, b),
    from: { index: a, address: deviceAddress(topology, a) },
    to: { index: b, address: deviceAddress(topology, b) },
    commonLevel: common,
  };
}

function finish(kind: RouteKind, hops: Hop[]): Route {
  let bottleneck = hops[0];
  let latencyUs = 0;
  for (const hop of hops) {
    latencyUs += hop.latencyUs;
    if (bottleneck === undefined || hop.gbsPerDirection < bottleneck.gbsPerDirection)
      bottleneck = hop;
  }
  return {
    kind,
    hops,
    gbsPerDirection: bottleneck?.gbsPerDirection ?? 0,
    latencyUs,
    bottleneck: bottleneck?.level ?? 'none',
  };
}

const routeCaches = new WeakMap<Topology, Map<number, Route>>();

/**
 * The route between two devices given by global index (the fast internal form). A route
 * depends only on the two servers' runs, the tier where they meet, their super-nodes and, on
 * a rail-optimized fabric, their rails; routes are cached on that key, so collectives over
 * thousands of devices compute only a handful.
 */
export function routeBetween(topology: Topology, a: number, b: number): Route {
  const x = locateDevice(topology, a);
  const y = locateDevice(topology, b);
  if (a === b)
    return {
      kind: 'same-device',
      hops: [],
      gbsPerDirection: x.run.accelerator.memoryBandwidthGBs,
      latencyUs: 0,
      bottleneck: 'device memory',
    };
  const { cluster } = topology;
  const R = cluster.runs.length;
  const Q = cluster.superNodes.length + 1;
  let key: number;
  const snA = x.run.superNode;
  const snB = y.run.superNode;
  if (x.server === y.server) key = x.runIndex;
  else if (
    snA !== null &&
    snB !== null &&
    (snA === snB || superNodeRoute(topology, snA, snB).kind !== 'packet')
  )
    key = R + snA * Q + snB;
  else {
    const t = meetingTier(topology, x.server, y.server);
    const rails = cluster.fabric?.kind === 'rail-optimized' && t === 0;
    const railA = rails ? nicIndex(x.run.model, x.local) : 0;
    const railB = rails ? nicIndex(y.run.model, y.local) : 0;
    key = R + Q * Q + (((x.runIndex * R + y.runIndex) * 4 + t) * 1024 + railA) * 1024 + railB;
  }
  let cache = routeCaches.get(topology);
  if (cache === undefined) {
    cache = new Map();
    routeCaches.set(topology, cache);
  }
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const route = computeRoute(topology, x, y);
  cache.set(key, route);
  return route;
}

function computeRoute(topology: Topology, x: DeviceLocation, y: DeviceLocation): Route {
  if (x.server === y.server) return finish('intra-server', [intraHop(x.run.model)]);
  const snA = x.run.superNode;
  const snB = y.run.superNode;
  const { cluster } = topology;
  if (snA !== null && snB !== null) {
    const A = cluster.superNodes[snA];
    const B = cluster.superNodes[snB];
    if (A === undefined || B === undefined) throw new CubeError('INTERNAL', 'super-node missing');
    if (snA === snB)
      return finish('super-node', [
        {
          kind: 'super-node',
          level: 'super-node',
          gbsPerDirection: A.gbsPerDirection,
          latencyUs: A.latencyUs,
        },
      ]);
    const sn = superNodeRoute(topology, snA, snB);
    if (sn.kind === 'circuits') {
      const hops: Hop[] = [
        {
          kind: 'super-node',
          level: `${A.id} fabric`,
          gbsPerDirection: A.gbsPerDirection,
          latencyUs: 0,
        },
      ];
      sn.legs.forEach((leg, i) => {
        if (i > 0) {
          const mid = cluster.superNodes[leg.from];
          hops.push({
            kind: 'super-node',
            level: `${mid?.id ?? leg.from} fabric (relay)`,
            gbsPerDirection: mid?.gbsPerDirection ?? 0,
            latencyUs: mid?.latencyUs ?? 0,
          });
        }
        hops.push({
          kind: 'ocs-circuit',
          level: `ocs ${leg.key}`,
          gbsPerDirection: leg.gbs,
          latencyUs: cluster.ocs?.latencyUs ?? 0,
          sharedBy: leg.key,
        });
      });
      hops.push({
        kind: 'super-node',
        level: `${B.id} fabric`,
        gbsPerDirection: B.gbsPerDirection,
        latencyUs: 0,
      });
      return finish(sn.legs.length === 1 ? 'ocs' : 'ocs-relay', hops);
    }
    if (sn.kind === 'unreachable')
      throw new CubeError(
        'INFEASIBLE',
        `${A.id} and ${B.id} are not connected: no OCS circuit path between them and no packet fabric`,
        {
          where: { node: `${A.id}-${B.id}` },
          hint: 'add circuits to the OCS matching or a packet fabric to the cluster file',
        },
      );
  }
  return packetRoute(topology, x, y);
}

function intraHop(model: ServerSpec): Hop {
  return {
    kind: 'intra-server',
    level: `server (${fabricWord(model)})`,
    gbsPerDirection: intraPairGbs(model),
    latencyUs: model.intraServer.latencyUs,
  };
}

/** The lowest tier (0-based) whose group holds both servers; the top tier holds all. */
export function meetingTier(topology: Topology, a: number, b: number): number {
  const tiers = topology.cluster.fabric?.tiers ?? [];
  for (let i = 0; i < tiers.length - 1; i += 1) {
    const g = tiers[i]?.serversPerGroup ?? 1;
    if (Math.floor(a / g) === Math.floor(b / g)) return i;
  }
  return Math.max(0, tiers.length - 1);
}

/** Product of the oversubscription of tiers 0..t-1: what leaving them divides bandwidth by. */
export function oversubscriptionBelow(topology: Topology, t: number): number {
  const tiers = topology.cluster.fabric?.tiers ?? [];
  let product = 1;
  for (let i = 0; i < t; i += 1) product *= tiers[i]?.oversubscription ?? 1;
  return product;
}

function packetRoute(topology: Topology, x: DeviceLocation, y: DeviceLocation): Route {
  const fabric = topology.cluster.fabric;
  if (fabric === null)
    throw new CubeError(
      'INFEASIBLE',
      `servers ${x.server} and ${y.server} are not connected: the cluster has no packet fabric`,
    );
  const shareA = nicShareGbs(x.run.model);
  const shareB = nicShareGbs(y.run.model);
  if (shareA <= 0 || shareB <= 0)
    throw new CubeError(
      'INFEASIBLE',
      `server ${shareA <= 0 ? x.server : y.server} has no NICs, so it cannot reach other servers`,
    );
  const nicLatency = Math.max(x.run.model.nics.latencyUs, y.run.model.nics.latencyUs);
  const t = meetingTier(topology, x.server, y.server);
  const upTo = (top: number, first: Hop[]): Hop[] => {
    const hops = [...first];
    for (let i = 1; i <= top; i += 1)
      hops.push({
        kind: 'switch',
        level: fabric.tiers[i]?.name ?? `tier${i + 1}`,
        gbsPerDirection: Math.min(shareA, shareB) / oversubscriptionBelow(topology, i),
        latencyUs: 2 * fabric.switchLatencyUs,
      });
    hops.push({ kind: 'nic', level: 'nic', gbsPerDirection: shareB, latencyUs: 0 });
    return hops;
  };
  const nicHop: Hop = {
    kind: 'nic',
    level: `nic + ${fabric.tiers[0]?.name ?? 'leaf'}`,
    gbsPerDirection: shareA,
    latencyUs: nicLatency,
  };
  if (fabric.kind === 'clos' || t > 0) return finish('packet', upTo(t, [nicHop]));

  // Rail-optimized, same rail group: same rail is one switch; otherwise up a tier or PXN.
  const railA = nicIndex(x.run.model, x.local);
  const railB = nicIndex(y.run.model, y.local);
  if (railA === railB) return finish('packet', upTo(0, [nicHop]));
  const options: Route[] = [];
  if (fabric.tiers.length > 1) options.push(finish('packet', upTo(1, [nicHop])));
  // PXN at the sender when it has a NIC on the receiver's rail, else at the receiver.
  const atSender = railB < x.run.model.nics.count;
  const relay = atSender ? x.run.model : railA < y.run.model.nics.count ? y.run.model : null;
  if (relay !== null) {
    const pxn: Hop = { ...intraHop(relay), kind: 'pxn', level: `pxn (${fabricWord(relay)})` };
    const receiverNic: Hop = { kind: 'nic', level: 'nic', gbsPerDirection: shareB, latencyUs: 0 };
    options.push(
      finish('packet-pxn', atSender ? upTo(0, [pxn, nicHop]) : [nicHop, pxn, receiverNic]),
    );
  }
  const best = options.sort(
    (p, q) => q.gbsPerDirection - p.gbsPerDirection || p.latencyUs - q.latencyUs,
  )[0];
  if (best === undefined)
    throw new CubeError(
      'INFEASIBLE',
      `rails ${railA} and ${railB} do not meet: a one-tier rail fabric needs an intra-server hop and neither server has one`,
    );
  return best;
}
