import { CubeError } from '../../core/index.ts';
import type { ServerRun } from './cluster.ts';
import { circuitGbs } from './ocs-routes.ts';
import { resolveDevice, type Topology } from './topology.ts';

/** The participants of a collective on one server. */
export interface ServerShare {
  readonly server: number;
  readonly run: ServerRun;
  /** Global device indices, ascending. */
  readonly devices: readonly number[];
  /** Local indices, ascending (parallel to `devices`). */
  readonly locals: readonly number[];
  readonly superNode: number | null;
}

/** The participants of a collective on one super-node. */
export interface SuperNodeShare {
  readonly superNode: number;
  readonly servers: readonly ServerShare[];
  readonly deviceCount: number;
}

/**
 * A set of devices grouped the way the algorithms need them: by server in ring order
 * (super-nodes in circuit order, then servers by index), and by super-node. Linear in the
 * number of devices (each located by binary search over the server runs).
 */
export interface Participants {
  readonly count: number;
  /** Servers in ring order. */
  readonly servers: readonly ServerShare[];
  /** Super-nodes in ring order; empty when the cluster has none. */
  readonly superNodes: readonly SuperNodeShare[];
  /** Servers in index order with the running device count before each, for range counts. */
  readonly byIndex: readonly ServerShare[];
  readonly before: readonly number[];
}

/** Groups devices (indices or addresses) for a collective; duplicates are an error. */
export function groupParticipants(
  topology: Topology,
  devices: readonly (number | string)[],
): Participants {
  const count = topology.cluster.deviceCount;
  // A typed array sorts numerically without a comparator (much faster on large sets).
  const indices = new Float64Array(devices.length);
  for (let i = 0; i < devices.length; i += 1) {
    const d = devices[i] ?? 0;
    indices[i] =
      typeof d === 'number' && Number.isInteger(d) && d >= 0 && d < count
        ? d
        : resolveDevice(topology, d);
  }
  indices.sort();
  for (let i = 1; i < indices.length; i += 1)
    if (indices[i] === indices[i - 1])
      throw new CubeError('INVALID_VALUE', `device ${indices[i]} is listed twice`, {
        where: { field: 'devices' },
      });
  const byIndex: {
    server: number;
    run: ServerRun;
    devices: number[];
    locals: number[];
    superNode: number | null;
  }[] = [];
  const runs = topology.cluster.runs;
  let r = 0;
  for (const device of indices) {
    // Devices are sorted, so the run only moves forward.
    while ((runs[r + 1]?.firstDevice ?? Infinity) <= device) r += 1;
    const run = runs[r];
    if (run === undefined) continue;
    const offset = device - run.firstDevice;
    const inRun = Math.floor(offset / run.devicesPerServer);
    const server = run.firstServer + inRun;
    let last = byIndex[byIndex.length - 1];
    if (last === undefined || last.server !== server) {
      last = { server, run, devices: [], locals: [], superNode: run.superNode };
      byIndex.push(last);
    }
    last.devices.push(device);
    last.locals.push(offset - inRun * run.devicesPerServer);
  }
  const before: number[] = [];
  let running = 0;
  for (const s of byIndex) {
    before.push(running);
    running += s.devices.length;
  }

  const snMap = new Map<number, ServerShare[]>();
  for (const s of byIndex) {
    if (s.superNode === null) continue;
    const list = snMap.get(s.superNode) ?? [];
    list.push(s);
    snMap.set(s.superNode, list);
  }
  const order = superNodeOrder(topology, [...snMap.keys()]);
  const superNodes: SuperNodeShare[] = order.map((sn) => {
    const servers = snMap.get(sn) ?? [];
    return {
      superNode: sn,
      servers,
      deviceCount: servers.reduce((n, s) => n + s.devices.length, 0),
    };
  });
  const servers = superNodes.length > 0 ? superNodes.flatMap((s) => s.servers) : byIndex;
  return { count: indices.length, servers, superNodes, byIndex, before };
}

/**
 * The order a ring visits super-nodes in: from the lowest index, always on to the unvisited
 * super-node with the widest direct circuit (ties: lower index), else the lowest unvisited.
 * With no OCS this is index order. A ring that follows circuits needs no relays.
 */
export function superNodeOrder(topology: Topology, superNodes: readonly number[]): number[] {
  const left = [...superNodes].sort((a, b) => a - b);
  if (topology.cluster.ocs === null || left.length <= 2) return left;
  const out: number[] = [];
  let at = left.shift();
  while (at !== undefined) {
    out.push(at);
    let best = -1;
    let bestGbs = 0;
    left.forEach((candidate, i) => {
      const gbs = circuitGbs(topology, at ?? 0, candidate);
      if (gbs > bestGbs) {
        best = i;
        bestGbs = gbs;
      }
    });
    at = left.splice(best < 0 ? 0 : best, 1)[0];
  }
  return out;
}

/** How many participants sit on servers `from` (inclusive) to `to` (exclusive). */
export function countInServerRange(p: Participants, from: number, to: number): number {
  return devicesBefore(p, to) - devicesBefore(p, from);
}

/** Participants on servers with an index below `server` (binary search; no closures: hot path). */
function devicesBefore(p: Participants, server: number): number {
  let lo = 0;
  let hi = p.byIndex.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((p.byIndex[mid]?.server ?? 0) < server) lo = mid + 1;
    else hi = mid;
  }
  return lo >= p.byIndex.length ? p.count : (p.before[lo] ?? 0);
}
