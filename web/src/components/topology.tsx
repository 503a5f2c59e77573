import { memo, useMemo } from 'react';
import {
  Background,
  Controls,
  Handle,
  Position,
  ReactFlow,
  type Edge,
  type Node,
  type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import type { ClusterNode } from '../api/types.ts';
import { groupCluster, type SuperNodeGroup } from '../cluster-groups.ts';
import { layoutTopology, type SuperNodeBox } from './topology-layout.ts';

/** Which rank runs on which device: node id -> local device position -> rank. */
export type RankMap = ReadonlyMap<string, ReadonlyMap<number, number>>;

interface SuperNodeData extends Record<string, unknown> {
  readonly group: SuperNodeGroup;
  readonly box: SuperNodeBox;
  readonly ranks: RankMap | null;
  readonly late: ReadonlySet<string>;
  readonly selected: string | null;
  readonly onSelect: ((nodeId: string) => void) | null;
}

interface FabricData extends Record<string, unknown> {
  readonly name: string;
  readonly superNodes: number;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function nodeClass(node: ClusterNode, selected: string | null, late: boolean): string {
  return [
    'topo-node',
    `node-${node.state}`,
    late ? 'node-late' : '',
    node.role === 'spare' ? 'node-spare' : '',
    node.id === selected ? 'node-selected' : '',
  ].join(' ');
}

function NodeCells(props: {
  node: ClusterNode;
  ranks: RankMap | null;
  late: boolean;
  selected: string | null;
  onSelect: ((nodeId: string) => void) | null;
}) {
  const { node, ranks, late, selected, onSelect } = props;
  const placed = ranks?.get(node.id);
  const flag = late
    ? 'LATE'
    : node.role === 'spare'
      ? 'spare'
      : node.state === 'ready'
        ? null
        : node.state.toUpperCase();
  return (
    <div
      className={nodeClass(node, selected, late)}
      title={`${node.name}: ${node.state}${late ? ', heartbeats late' : ''}${
        node.role === 'spare' ? ', hot spare' : ''
      }`}
      data-node={node.name}
      onClick={onSelect === null ? undefined : () => onSelect(node.id)}
    >
      {node.devices.map((d, i) => {
        const rank = placed?.get(i);
        const health = node.state === 'down' ? 'unknown' : d.health;
        return (
          <span
            key={d.index}
            className={`cell health-${health}${rank === undefined ? '' : ' cell-placed'}${
              ranks !== null && rank === undefined ? ' cell-dim' : ''
            }`}
            title={`${node.name} device ${d.index} (${d.model}): ${health}${
              rank === undefined ? '' : `, rank ${rank}`
            }`}
          >
            {rank === undefined ? null : <i>{rank}</i>}
          </span>
        );
      })}
      {flag === null ? null : <span className="node-flag">{flag}</span>}
    </div>
  );
}

function SuperNodeView(props: NodeProps<Node<SuperNodeData, 'superNode'>>) {
  const { group, box, ranks, late, selected, onSelect } = props.data;
  return (
    <div
      className="topo-supernode"
      style={{ width: box.width, height: box.height }}
      data-supernode={group.name}
    >
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="topo-supernode-title">
        {group.name}
        {group.pod === null ? '' : ` · pod ${group.pod}`}
        <span>
          {plural(group.servers.length, 'server')} · {plural(group.devices, 'device')}
        </span>
      </div>
      {group.servers.map((server, i) => {
        const b = box.servers[i];
        if (b === undefined) return null;
        return (
          <div
            key={server.name}
            className="topo-server"
            style={{ left: b.x, top: b.y, width: b.width, height: b.height }}
          >
            <div className="topo-server-title">{server.name}</div>
            {server.nodes.map((node) => (
              <NodeCells
                key={node.id}
                node={node}
                ranks={ranks}
                late={late.has(node.id)}
                selected={selected}
                onSelect={onSelect}
              />
            ))}
          </div>
        );
      })}
    </div>
  );
}

function FabricView(props: NodeProps<Node<FabricData, 'fabric'>>) {
  return (
    <div className="topo-fabric" data-ocs={props.data.name}>
      Optical circuit switch {props.data.name}
      <span>links {plural(props.data.superNodes, 'super-node')}</span>
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}

const noneLate: ReadonlySet<string> = new Set();

const nodeTypes = { superNode: memo(SuperNodeView), fabric: memo(FabricView) };

/**
 * The cluster as built: super-nodes as boxes (under the optical circuit switch that links
 * them, when the nodes' `ocs` label names one), servers as boxes inside, and every device as a small cell coloured by health (grey
 * when its node is down). Spares and cordoned nodes are marked. With `ranks`, the devices a
 * job runs on carry their rank and the rest are dimmed. A thousand devices are a handful of
 * graph nodes, not a thousand.
 */
export function Topology(props: {
  nodes: readonly ClusterNode[];
  ranks?: RankMap;
  /** Ids of nodes whose heartbeats are late (flagged until the control plane marks them down). */
  late?: ReadonlySet<string>;
  selected?: string | null;
  onSelect?: (nodeId: string) => void;
  height?: number;
}) {
  const { nodes, ranks = null, selected = null, onSelect = null, height = 460 } = props;
  const late = props.late ?? noneLate;
  const groups = useMemo(() => groupCluster(nodes), [nodes]);
  const placed = useMemo(() => layoutTopology(groups), [groups]);
  const flow = useMemo(() => {
    const flowNodes: Node[] = groups.map((group, i) => {
      const at = placed.superNodes[i] ?? { x: 0, y: 0, box: { width: 0, height: 0, servers: [] } };
      return {
        id: `sn:${group.name}`,
        type: 'superNode',
        position: { x: at.x, y: at.y },
        data: { group, box: at.box, ranks, late, selected, onSelect } satisfies SuperNodeData,
        // The size is known from the layout. Given here, xyflow need not measure the node
        // again each time the data changes (a node it has not measured stays hidden).
        width: at.box.width,
        height: at.box.height,
        measured: { width: at.box.width, height: at.box.height },
        draggable: false,
        selectable: false,
      };
    });
    const edges: Edge[] = [];
    for (const fabric of placed.fabrics) {
      const id = `ocs:${fabric.name}`;
      flowNodes.push({
        id,
        type: 'fabric',
        position: { x: fabric.x, y: fabric.y },
        data: { name: fabric.name, superNodes: fabric.superNodes.length } satisfies FabricData,
        width: fabric.width,
        height: fabric.height,
        measured: { width: fabric.width, height: fabric.height },
        draggable: false,
        selectable: false,
      });
      for (const i of fabric.superNodes) {
        const group = groups[i];
        if (group !== undefined)
          edges.push({
            id: `${id}-${group.name}`,
            source: id,
            target: `sn:${group.name}`,
            className: 'topo-link',
          });
      }
    }
    return { nodes: flowNodes, edges };
  }, [groups, placed, ranks, late, selected, onSelect]);

  return (
    <div
      className="topology"
      style={{ height }}
      data-devices={groups.reduce((n, g) => n + g.devices, 0)}
    >
      <ReactFlow
        nodes={flow.nodes}
        edges={flow.edges}
        nodeTypes={nodeTypes}
        fitView
        minZoom={0.05}
        maxZoom={3}
        nodesConnectable={false}
        nodesDraggable={false}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={24} />
        <Controls showInteractive={false} />
      </ReactFlow>
      <div className="legend">
        <span className="cell health-ok" /> ok <span className="cell health-degraded" /> degraded{' '}
        <span className="cell health-failed" /> failed <span className="cell health-unknown" /> node
        down <span className="legend-box node-spare" /> hot spare{' '}
        <span className="legend-box node-cordoned" /> cordoned{' '}
        <span className="legend-box node-late" /> heartbeats late
        {ranks === null ? null : (
          <>
            {' '}
            <span className="cell cell-placed health-ok" /> this job&apos;s ranks
          </>
        )}
      </div>
    </div>
  );
}
