import { compareNames, count, namesThat } from './text.ts';
import type { Allocation, DeviceKind, NodeState, SchedulerNode } from './types.ts';

/** A node with what placement asks of it computed once. */
export interface IndexedNode {
  readonly node: SchedulerNode;
  /** The `superNode` label; undefined when the node has none. */
  readonly superNode: string | undefined;
  readonly pod: string | undefined;
  /** Healthy (`ok`) device indices per kind, ascending. */
  readonly healthy: ReadonlyMap<DeviceKind, readonly number[]>;
  /** All devices per kind, whatever their health. */
  readonly total: ReadonlyMap<DeviceKind, number>;
}

/** The cluster as one scheduling pass sees it. */
export interface ClusterIndex {
  /** In name order. */
  readonly nodes: readonly IndexedNode[];
  readonly byId: ReadonlyMap<string, IndexedNode>;
  /** Node id → the job holding it. */
  readonly allocatedTo: ReadonlyMap<string, string>;
}

/** Indexes nodes and allocations; linear in nodes and devices (plus sorting by name). */
export function indexCluster(
  nodes: readonly SchedulerNode[],
  allocations: readonly Allocation[],
): ClusterIndex {
  const indexed = nodes.map((node): IndexedNode => {
    const healthy = new Map<DeviceKind, number[]>();
    const total = new Map<DeviceKind, number>();
    for (const d of node.devices) {
      total.set(d.kind, (total.get(d.kind) ?? 0) + 1);
      if (d.health !== 'ok') continue;
      const list = healthy.get(d.kind);
      if (list === undefined) healthy.set(d.kind, [d.index]);
      else list.push(d.index);
    }
    for (const list of healthy.values()) list.sort((a, b) => a - b);
    return {
      node,
      superNode: node.labels.superNode,
      pod: node.labels.pod,
      healthy,
      total,
    };
  });
  indexed.sort(
    (a, b) => compareNames(a.node.name, b.node.name) || compareNames(a.node.id, b.node.id),
  );
  const allocatedTo = new Map<string, string>();
  for (const a of allocations) for (const id of a.nodeIds) allocatedTo.set(id, a.jobId);
  return { nodes: indexed, byId: new Map(indexed.map((n) => [n.node.id, n])), allocatedTo };
}

/** What a job asks of each of its nodes. */
export interface Demand {
  readonly jobId: string | undefined;
  readonly deviceType: DeviceKind;
  readonly devicesPerNode: number;
}

/** Nodes spoken for during one pass: node id → job id. */
export interface Holds {
  /** Given to a higher-priority job earlier in this pass. */
  readonly claimed: ReadonlyMap<string, string>;
  /** Kept free for a higher-priority job that could not be placed (backfill). */
  readonly reserved: ReadonlyMap<string, string>;
}

/** Why a node can or cannot take a job, checked in this order. */
export type Verdict =
  | { readonly kind: 'usable' }
  | { readonly kind: 'no-devices' }
  | { readonly kind: 'too-few-healthy'; readonly healthy: number }
  | { readonly kind: 'not-ready'; readonly state: Exclude<NodeState, 'ready'> }
  | { readonly kind: 'spare' }
  | { readonly kind: 'in-use'; readonly jobId: string }
  | { readonly kind: 'claimed'; readonly jobId: string }
  | { readonly kind: 'reserved'; readonly jobId: string };

const noHolds: Holds = { claimed: new Map(), reserved: new Map() };

/** Whether `n` can take `demand` now, and if not, the first reason it cannot. */
export function assessNode(
  n: IndexedNode,
  options: {
    readonly demand: Demand;
    readonly allocatedTo: ReadonlyMap<string, string>;
    readonly holds?: Holds;
    readonly useSpares: boolean;
  },
): Verdict {
  const { demand, allocatedTo, holds = noHolds, useSpares } = options;
  const id = n.node.id;
  if ((n.total.get(demand.deviceType) ?? 0) === 0) return { kind: 'no-devices' };
  const healthy = n.healthy.get(demand.deviceType)?.length ?? 0;
  if (healthy < demand.devicesPerNode) return { kind: 'too-few-healthy', healthy };
  if (n.node.state !== 'ready') return { kind: 'not-ready', state: n.node.state };
  if (n.node.role === 'spare' && !useSpares) return { kind: 'spare' };
  const holder = allocatedTo.get(id);
  if (holder !== undefined && holder !== demand.jobId) return { kind: 'in-use', jobId: holder };
  const claimer = holds.claimed.get(id);
  if (claimer !== undefined) return { kind: 'claimed', jobId: claimer };
  const reserver = holds.reserved.get(id);
  if (reserver !== undefined) return { kind: 'reserved', jobId: reserver };
  return { kind: 'usable' };
}

/** `2 healthy cpu devices`. */
export function devicesPhrase(demand: Demand): string {
  return `${count(demand.devicesPerNode, `healthy ${demand.deviceType} device`)}`;
}

/** Names grouped by the job they belong to: `node-7 in use by j-a` or `... by other jobs`. */
function byJob(
  entries: readonly { readonly name: string; readonly jobId: string }[],
  what: (job: string) => string,
  others: string,
): string {
  const jobs = new Set(entries.map((e) => e.jobId));
  const [only] = jobs;
  const names = entries.map((e) => e.name);
  return namesThat(names, jobs.size === 1 && only !== undefined ? what(only) : others);
}

/**
 * Why the usable nodes are too few, node by node, grouped: `node-3 cordoned, node-5 down,
 * 1 spare kept in reserve` for nodes that have the devices, and separately the nodes whose
 * devices are too few or unhealthy. Nodes that have left are not mentioned.
 */
export function describeUnusable(
  assessed: readonly { readonly n: IndexedNode; readonly verdict: Verdict }[],
  demand: Demand,
): { readonly withDevices: readonly string[]; readonly lacking: string | null } {
  const byState = new Map<NodeState, string[]>();
  const spares: string[] = [];
  const inUse: { name: string; jobId: string }[] = [];
  const claimed: { name: string; jobId: string }[] = [];
  const reserved: { name: string; jobId: string }[] = [];
  const lacking: { name: string; healthy: number }[] = [];
  for (const { n, verdict } of assessed) {
    const name = n.node.name;
    switch (verdict.kind) {
      case 'usable':
      case 'no-devices':
        break;
      case 'too-few-healthy':
        if (n.node.state !== 'left') lacking.push({ name, healthy: verdict.healthy });
        break;
      case 'not-ready':
        byState.set(verdict.state, [...(byState.get(verdict.state) ?? []), name]);
        break;
      case 'spare':
        spares.push(name);
        break;
      case 'in-use':
        inUse.push({ name, jobId: verdict.jobId });
        break;
      case 'claimed':
        claimed.push({ name, jobId: verdict.jobId });
        break;
      case 'reserved':
        reserved.push({ name, jobId: verdict.jobId });
        break;
      default:
        verdict satisfies never;
    }
  }
  const parts: string[] = [];
  for (const state of ['cordoned', 'down'] as const) {
    const names = byState.get(state);
    if (names !== undefined) parts.push(namesThat(names, state));
  }
  if (spares.length > 0) parts.push(`${count(spares.length, 'spare')} kept in reserve`);
  if (inUse.length > 0) parts.push(byJob(inUse, (j) => `in use by ${j}`, 'in use by other jobs'));
  if (claimed.length > 0)
    parts.push(
      byJob(
        claimed,
        (j) => `just placed for higher-priority ${j}`,
        'just placed for higher-priority jobs',
      ),
    );
  if (reserved.length > 0)
    parts.push(
      byJob(reserved, (j) => `held for higher-priority ${j}`, 'held for higher-priority jobs'),
    );
  let lackingText: string | null = null;
  const [single] = lacking;
  if (lacking.length === 1 && single !== undefined)
    lackingText = `${single.name} has only ${count(single.healthy, `healthy ${demand.deviceType} device`)}`;
  else if (lacking.length > 1)
    lackingText = namesThat(
      lacking.map((l) => l.name),
      `have fewer than ${devicesPhrase(demand)}`,
    );
  return { withDevices: parts, lacking: lackingText };
}

/**
 * The reason a job's nodes are too few, e.g. `needs 4 nodes with 2 healthy cpu devices;
 * 3 ready worker nodes have them (node-3 cordoned, node-5 down, 1 spare kept in reserve)`.
 */
export function describeShortage(options: {
  readonly demand: Demand;
  readonly nodesNeeded: number;
  readonly assessed: readonly { readonly n: IndexedNode; readonly verdict: Verdict }[];
  readonly useSpares: boolean;
}): string {
  const { demand, nodesNeeded, assessed, useSpares } = options;
  const needs = `needs ${count(nodesNeeded, 'node')} with ${devicesPhrase(demand)}`;
  const anyOfKind = assessed.some(
    (a) => a.verdict.kind !== 'no-devices' && a.n.node.state !== 'left',
  );
  if (!anyOfKind) return `${needs}; no node has ${demand.deviceType} devices`;
  const usable = assessed.filter((a) => a.verdict.kind === 'usable').length;
  const { withDevices, lacking } = describeUnusable(assessed, demand);
  const kind = useSpares ? 'ready node' : 'ready worker node';
  const have =
    usable === 0
      ? `no ${kind} has them`
      : `${count(usable, kind)} ${usable === 1 ? 'has' : 'have'} them`;
  const why = withDevices.length > 0 ? ` (${withDevices.join(', ')})` : '';
  return `${needs}; ${have}${why}${lacking === null ? '' : `; ${lacking}`}`;
}
