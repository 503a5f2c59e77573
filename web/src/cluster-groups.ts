import type { ClusterNode } from './api/types.ts';

/** A server box: the nodes (machines) that carry its `server` label. */
export interface ServerGroup {
  readonly name: string;
  readonly nodes: readonly ClusterNode[];
  /** Devices over all its nodes. */
  readonly devices: number;
}

/** A super-node: the servers whose nodes carry its `superNode` label. */
export interface SuperNodeGroup {
  readonly name: string;
  readonly pod: string | null;
  /**
   * The optical circuit switch that links it to other super-nodes (its nodes' `ocs` label), or
   * null: nothing in what the control plane reports says it has one, so none is drawn.
   */
  readonly ocs: string | null;
  readonly servers: readonly ServerGroup[];
  readonly devices: number;
}

/** Name for nodes with no `superNode` label. */
export const ungrouped = '(no super-node)';

function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name, undefined, { numeric: true });
}

/**
 * Groups the cluster's nodes the way the hardware is built: super-node, then server, from
 * the node labels (`superNode`, `server`, `pod`, `ocs`). A node without a `server` label is its
 * own server; nodes that have left (replaced by a newer node of the same name) are not shown.
 */
export function groupCluster(nodes: readonly ClusterNode[]): SuperNodeGroup[] {
  const superNodes = new Map<
    string,
    { pod: string | null; ocs: string | null; servers: Map<string, ClusterNode[]> }
  >();
  for (const node of nodes) {
    if (node.state === 'left') continue;
    const sn = node.labels.superNode ?? ungrouped;
    let group = superNodes.get(sn);
    if (group === undefined) {
      group = { pod: node.labels.pod ?? null, ocs: null, servers: new Map() };
      superNodes.set(sn, group);
    }
    group.ocs ??= node.labels.ocs ?? null;
    const server = node.labels.server ?? node.name;
    const list = group.servers.get(server) ?? [];
    list.push(node);
    group.servers.set(server, list);
  }
  return [...superNodes.entries()]
    .map(([name, g]) => {
      const servers = [...g.servers.entries()]
        .map(([serverName, list]) => ({
          name: serverName,
          nodes: [...list].sort(byName),
          devices: list.reduce((n, node) => n + node.devices.length, 0),
        }))
        .sort(byName);
      return {
        name,
        pod: g.pod,
        ocs: g.ocs,
        servers,
        devices: servers.reduce((n, s) => n + s.devices, 0),
      };
    })
    .sort(byName);
}

/** Counts by node state and role, and by device health, for the summary tiles. */
export interface ClusterSummary {
  readonly nodes: number;
  readonly ready: number;
  readonly cordoned: number;
  readonly down: number;
  readonly spares: number;
  readonly sparesReady: number;
  readonly devices: number;
  readonly devicesOk: number;
  readonly devicesDegraded: number;
  readonly devicesFailed: number;
}

/** Summarises the nodes that have not left. */
export function summarise(nodes: readonly ClusterNode[]): ClusterSummary {
  const live = nodes.filter((n) => n.state !== 'left');
  const devices = live.flatMap((n) => n.devices);
  return {
    nodes: live.length,
    ready: live.filter((n) => n.state === 'ready').length,
    cordoned: live.filter((n) => n.state === 'cordoned').length,
    down: live.filter((n) => n.state === 'down').length,
    spares: live.filter((n) => n.role === 'spare').length,
    sparesReady: live.filter((n) => n.role === 'spare' && n.state === 'ready').length,
    devices: devices.length,
    devicesOk: devices.filter((d) => d.health === 'ok').length,
    devicesDegraded: devices.filter((d) => d.health === 'degraded').length,
    devicesFailed: devices.filter((d) => d.health === 'failed').length,
  };
}
