import { CubeError } from '../../core/index.ts';
import type { Cluster, ServerRun } from './cluster.ts';

/**
 * The levels a cluster nests into, outermost first. Which appear depends on the cluster:
 * `super-node` when it has super-nodes; otherwise `pod` (a tier-2 group of a 3-tier fabric) and
 * `leaf-group` / `rail-group` (a tier-1 group) when the fabric has more than one group there.
 */
export type LevelKind =
  'cluster' | 'pod' | 'leaf-group' | 'rail-group' | 'super-node' | 'server' | 'device';

/** One level of the tree. */
export interface Level {
  readonly kind: LevelKind;
  /** Nodes at this level across the whole cluster. */
  readonly count: number;
  /** Address segment prefix (`sn`, `srv`, `gpu`, ...); empty for the cluster. */
  readonly prefix: string;
  /** Digits of a local index in an address (zero-padded so addresses sort). */
  readonly digits: number;
  /** For `pod` / `leaf-group` / `rail-group`: servers per group. */
  readonly serversPerGroup: number | null;
}

/** A node of the tree: a contiguous range of servers and of devices. */
export interface TopologyNode {
  readonly kind: LevelKind;
  /** Index among all nodes of this kind in the cluster. */
  readonly index: number;
  /** The address, e.g. `sn1/srv07`; the cluster's is the empty string. */
  readonly address: string;
  readonly firstServer: number;
  readonly serverCount: number;
  readonly firstDevice: number;
  readonly deviceCount: number;
}

/** One accelerator: its stable global index, its address and where it sits. */
export interface DeviceInfo {
  readonly index: number;
  /** e.g. `sn1/srv07/gpu3`. */
  readonly address: string;
  readonly server: number;
  /** Index inside its server (the local rank when a job fills the server). */
  readonly local: number;
  readonly run: ServerRun;
  readonly superNode: number | null;
}

/**
 * The topology of a cluster: the tree of levels plus constant-time lookups from a device's
 * global index to its server, super-node and fabric groups. Nothing is expanded per device;
 * nodes are computed on demand from the server runs.
 */
export interface Topology {
  readonly cluster: Cluster;
  readonly levels: readonly Level[];
}

const prefixes: Record<LevelKind, string> = {
  cluster: '',
  pod: 'pod',
  'leaf-group': 'lg',
  'rail-group': 'rg',
  'super-node': 'sn',
  server: 'srv',
  device: 'gpu',
};

/** Builds the topology of a resolved cluster (cost: linear in servers, not devices). */
export function createTopology(cluster: Cluster): Topology {
  const kinds: { kind: LevelKind; serversPerGroup: number | null; count: number }[] = [
    { kind: 'cluster', serversPerGroup: null, count: 1 },
  ];
  const S = cluster.serverCount;
  if (cluster.superNodes.length > 0) {
    kinds.push({ kind: 'super-node', serversPerGroup: null, count: cluster.superNodes.length });
  } else if (cluster.fabric !== null) {
    const tiers = cluster.fabric.tiers;
    // Outermost first: a tier-2 group (pod) holds tier-1 groups.
    for (let i = tiers.length - 2; i >= 0; i -= 1) {
      const g = tiers[i]?.serversPerGroup ?? null;
      if (g === null || g >= S) continue;
      const kind: LevelKind =
        i === 1 ? 'pod' : cluster.fabric.kind === 'rail-optimized' ? 'rail-group' : 'leaf-group';
      kinds.push({ kind, serversPerGroup: g, count: Math.ceil(S / g) });
    }
  }
  kinds.push({ kind: 'server', serversPerGroup: 1, count: S });
  kinds.push({ kind: 'device', serversPerGroup: null, count: cluster.deviceCount });

  const partial: Topology = {
    cluster,
    levels: kinds.map((k) => ({ ...k, prefix: prefixes[k.kind], digits: 1 })),
  };
  // Digits: the most children any node of the level above has.
  const levels = partial.levels.map((level, i): Level => {
    if (i === 0 || level.kind === 'super-node') return level;
    let most = 0;
    if (level.kind === 'device') {
      for (const run of cluster.runs) most = Math.max(most, run.devicesPerServer);
    } else {
      const parent = partial.levels[i - 1];
      if (parent !== undefined) {
        for (let p = 0; p < parent.count; p += 1) {
          const node = nodeAt(partial, parent.kind, p);
          const first = levelIndexOfServer(partial, level.kind, node.firstServer);
          const last = levelIndexOfServer(
            partial,
            level.kind,
            node.firstServer + node.serverCount - 1,
          );
          most = Math.max(most, last - first + 1);
        }
      }
    }
    return { ...level, digits: String(Math.max(0, most - 1)).length };
  });
  return { cluster, levels };
}

/** The run holding global server index `server` (binary search over runs). */
export function runOfServer(topology: Topology, server: number): ServerRun {
  const runs = topology.cluster.runs;
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((runs[mid]?.firstServer ?? 0) <= server) lo = mid;
    else hi = mid - 1;
  }
  const run = runs[lo];
  if (run === undefined || server < 0 || server >= topology.cluster.serverCount)
    throw new CubeError('INVALID_VALUE', `no server ${server} in cluster ${topology.cluster.name}`);
  return run;
}

/** Index of the run holding global device index `device`. */
function runIndexOfDevice(topology: Topology, device: number): number {
  const runs = topology.cluster.runs;
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((runs[mid]?.firstDevice ?? 0) <= device) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function checkDevice(topology: Topology, device: number): void {
  if (!Number.isInteger(device) || device < 0 || device >= topology.cluster.deviceCount)
    throw new CubeError(
      'INVALID_VALUE',
      `no device ${device} in cluster ${topology.cluster.name} (devices 0..${topology.cluster.deviceCount - 1})`,
      { where: { field: 'device' } },
    );
}

/** Where a device sits: its server (global index), local index, run and the run's index. */
export interface DeviceLocation {
  readonly server: number;
  readonly local: number;
  readonly run: ServerRun;
  readonly runIndex: number;
}

/** The server (global index) and local index of a device. */
export function locateDevice(topology: Topology, device: number): DeviceLocation {
  checkDevice(topology, device);
  const runIndex = runIndexOfDevice(topology, device);
  const run = topology.cluster.runs[runIndex];
  if (run === undefined) throw new CubeError('INTERNAL', 'a cluster without servers');
  const offset = device - run.firstDevice;
  const inRun = Math.floor(offset / run.devicesPerServer);
  return {
    server: run.firstServer + inRun,
    local: offset - inRun * run.devicesPerServer,
    run,
    runIndex,
  };
}

/** The first device of a server. */
export function firstDeviceOfServer(topology: Topology, server: number): number {
  const run = runOfServer(topology, server);
  return run.firstDevice + (server - run.firstServer) * run.devicesPerServer;
}

/** Index of the node of `kind` that holds global server `server`. */
export function levelIndexOfServer(topology: Topology, kind: LevelKind, server: number): number {
  switch (kind) {
    case 'cluster':
      return 0;
    case 'server':
      return server;
    case 'super-node':
      return runOfServer(topology, server).superNode ?? 0;
    case 'pod':
    case 'leaf-group':
    case 'rail-group': {
      const g = levelOf(topology, kind).serversPerGroup ?? 1;
      return Math.floor(server / g);
    }
    case 'device':
      return firstDeviceOfServer(topology, server);
    default:
      return kind satisfies never;
  }
}

function levelOf(topology: Topology, kind: LevelKind): Level {
  const level = topology.levels.find((l) => l.kind === kind);
  if (level === undefined)
    throw new CubeError(
      'INVALID_VALUE',
      `cluster ${topology.cluster.name} has no ${kind} level (levels: ${topology.levels.map((l) => l.kind).join(', ')})`,
    );
  return level;
}

/** The node of `kind` with global index `index`. */
export function nodeAt(topology: Topology, kind: LevelKind, index: number): TopologyNode {
  const level = levelOf(topology, kind);
  if (!Number.isInteger(index) || index < 0 || index >= level.count)
    throw new CubeError(
      'INVALID_VALUE',
      `no ${kind} ${index} in cluster ${topology.cluster.name} (0..${level.count - 1})`,
    );
  const { cluster } = topology;
  let firstServer: number;
  let serverCount: number;
  switch (kind) {
    case 'cluster':
      firstServer = 0;
      serverCount = cluster.serverCount;
      break;
    case 'super-node': {
      const sn = cluster.superNodes[index];
      firstServer = sn?.firstServer ?? 0;
      serverCount = sn?.serverCount ?? 0;
      break;
    }
    case 'pod':
    case 'leaf-group':
    case 'rail-group':
    case 'server': {
      const g = level.serversPerGroup ?? 1;
      firstServer = index * g;
      serverCount = Math.min(g, cluster.serverCount - firstServer);
      break;
    }
    case 'device': {
      const { server } = locateDevice(topology, index);
      return {
        kind,
        index,
        address: deviceAddress(topology, index),
        firstServer: server,
        serverCount: 1,
        firstDevice: index,
        deviceCount: 1,
      };
    }
    default:
      return kind satisfies never;
  }
  const firstDevice = firstDeviceOfServer(topology, firstServer);
  const end =
    firstServer + serverCount >= cluster.serverCount
      ? cluster.deviceCount
      : firstDeviceOfServer(topology, firstServer + serverCount);
  return {
    kind,
    index,
    address: serverRangeAddress(topology, kind, firstServer),
    firstServer,
    serverCount,
    firstDevice,
    deviceCount: end - firstDevice,
  };
}

/** The root of the tree: the whole cluster. */
export function rootNode(topology: Topology): TopologyNode {
  return nodeAt(topology, 'cluster', 0);
}

/** The children of a node, in order (a device has none). */
export function childrenOf(topology: Topology, node: TopologyNode): TopologyNode[] {
  const depth = topology.levels.findIndex((l) => l.kind === node.kind);
  const child = topology.levels[depth + 1];
  if (child === undefined) return [];
  if (child.kind === 'device') {
    const out: TopologyNode[] = [];
    for (let d = node.firstDevice; d < node.firstDevice + node.deviceCount; d += 1)
      out.push(nodeAt(topology, 'device', d));
    return out;
  }
  const first = levelIndexOfServer(topology, child.kind, node.firstServer);
  const last = levelIndexOfServer(topology, child.kind, node.firstServer + node.serverCount - 1);
  const out: TopologyNode[] = [];
  for (let i = first; i <= last; i += 1) out.push(nodeAt(topology, child.kind, i));
  return out;
}

/** The nodes holding a device, from the cluster down to the device itself. */
export function ancestorsOf(topology: Topology, device: number): TopologyNode[] {
  const { server } = locateDevice(topology, device);
  return topology.levels.map((level) =>
    level.kind === 'device'
      ? nodeAt(topology, 'device', device)
      : nodeAt(topology, level.kind, levelIndexOfServer(topology, level.kind, server)),
  );
}

/** Everything about one device. */
export function deviceInfo(topology: Topology, device: number): DeviceInfo {
  const { server, local, run } = locateDevice(topology, device);
  return {
    index: device,
    address: deviceAddress(topology, device),
    server,
    local,
    run,
    superNode: run.superNode,
  };
}

/** The first server of node `index` of a server-range level. */
function firstServerOf(topology: Topology, level: Level, index: number): number {
  if (level.kind === 'super-node') return topology.cluster.superNodes[index]?.firstServer ?? 0;
  return index * (level.serversPerGroup ?? 0);
}

function segment(level: Level, local: number): string {
  return `${level.prefix}${String(local).padStart(level.digits, '0')}`;
}

/** Address of the node of `kind` holding server `server` (all levels down to `kind`). */
function serverRangeAddress(topology: Topology, kind: LevelKind, server: number): string {
  if (kind === 'cluster') return '';
  const parts: string[] = [];
  let parentFirst = 0;
  for (const level of topology.levels) {
    if (level.kind === 'cluster') continue;
    const index = levelIndexOfServer(topology, level.kind, server);
    const local =
      level.kind === 'super-node'
        ? index
        : index - levelIndexOfServer(topology, level.kind, parentFirst);
    parts.push(segment(level, local));
    if (level.kind === kind) break;
    parentFirst = firstServerOf(topology, level, index);
  }
  return parts.join('/');
}

/** The address of a device, e.g. `sn1/srv07/gpu3` or `pod2/rg05/srv12/gpu3`. */
export function deviceAddress(topology: Topology, device: number): string {
  const { server, local } = locateDevice(topology, device);
  const deviceLevel = topology.levels[topology.levels.length - 1];
  const prefix = serverRangeAddress(topology, 'server', server);
  return deviceLevel === undefined ? prefix : `${prefix}/${segment(deviceLevel, local)}`;
}

/**
 * The global index of a device given as an index or an address (`sn1/srv07/gpu3`; zero
 * padding optional). A bad address is an INVALID_VALUE naming the segment that is wrong.
 */
export function resolveDevice(topology: Topology, device: number | string): number {
  if (typeof device === 'number') {
    checkDevice(topology, device);
    return device;
  }
  if (/^\d+$/.test(device)) return resolveDevice(topology, Number(device));
  const node = findNode(topology, device);
  if (node.kind !== 'device')
    throw addressError(topology, device, `${device} is a ${node.kind}, not a device`);
  return node.index;
}

function addressError(topology: Topology, address: string, why: string): CubeError {
  const expected = topology.levels
    .filter((l) => l.kind !== 'cluster')
    .map((l) => `${l.prefix}N`)
    .join('/');
  return new CubeError('INVALID_VALUE', `bad address "${address}": ${why}`, {
    where: { field: 'device' },
    hint: `addresses in ${topology.cluster.name} look like ${expected}`,
  });
}

/**
 * The node at an address: `sn1` (a super-node), `sn1/srv07` (a server), `sn1/srv07/gpu3`
 * (a device); the empty string is the cluster. Zero padding is optional.
 */
export function findNode(topology: Topology, address: string): TopologyNode {
  const levels = topology.levels.filter((l) => l.kind !== 'cluster');
  let node = rootNode(topology);
  if (address === '') return node;
  const parts = address.split('/');
  if (parts.length > levels.length)
    throw addressError(topology, address, `at most ${levels.length} segments`);
  for (const [i, part] of parts.entries()) {
    const level = levels[i];
    if (level === undefined) throw addressError(topology, address, 'too many segments');
    const match = new RegExp(`^${level.prefix}(\\d+)$`).exec(part);
    if (match === null)
      throw addressError(topology, address, `segment "${part}" should be ${level.prefix}<number>`);
    const local = Number(match[1]);
    // Children of a node are contiguous: the local index offsets the first child's index.
    const first =
      level.kind === 'device'
        ? node.firstDevice
        : level.kind === 'super-node'
          ? 0
          : levelIndexOfServer(topology, level.kind, node.firstServer);
    const index = first + local;
    const inside =
      level.kind === 'device'
        ? local < node.deviceCount
        : index < level.count &&
          firstServerOf(topology, level, index) < node.firstServer + node.serverCount &&
          firstServerOf(topology, level, index) >= node.firstServer;
    if (!inside)
      throw addressError(
        topology,
        address,
        `${node.address === '' ? 'the cluster' : node.address} has no ${part}`,
      );
    node = nodeAt(topology, level.kind, index);
  }
  return node;
}
