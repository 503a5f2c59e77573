import type { ServerRun } from './cluster.ts';
import { fabricWord, intraPairGbs, nicShareGbs } from './paths.ts';
import { childrenOf, rootNode, runOfServer, type Topology, type TopologyNode } from './topology.ts';

/** The hierarchy as text: one compact line and an indented picture, identical siblings collapsed. */
export interface HierarchyPicture {
  /** e.g. `4 × super-node[32 × br166-oam-8 (8 × br166, full mesh)]`. */
  readonly compact: string;
  readonly lines: readonly string[];
}

function serverLabel(run: ServerRun): string {
  const per = run.model.acceleratorsPerServer;
  const used = run.devicesPerServer === per ? `${per}` : `${run.devicesPerServer} of ${per}`;
  return `${run.model.id} (${used} × ${run.accelerator.id}, ${fabricWord(run.model)})`;
}

function serverDetail(run: ServerRun): string {
  const m = run.model;
  const intra =
    m.intraServer.kind === 'full-mesh'
      ? `${intraPairGbs(m)} GB/s per peer`
      : `${m.intraServer.gbsPerDirection} GB/s per device`;
  const nics =
    m.nics.count === 0
      ? 'no NICs'
      : `${m.nics.count} × ${m.nics.gbps} Gb/s NICs (${round(nicShareGbs(m))} GB/s per device)`;
  return `${intra}; ${nics}`;
}

function groupDetail(topology: Topology, node: TopologyNode): string {
  const { cluster } = topology;
  if (node.kind === 'super-node') {
    const sn = cluster.superNodes[node.index];
    return sn === undefined
      ? ''
      : `all-to-all ${sn.gbsPerDirection} GB/s per device, ${sn.latencyUs} µs`;
  }
  const tiers = cluster.fabric?.tiers ?? [];
  const tier = node.kind === 'pod' ? tiers[1] : tiers[0];
  if (tier === undefined) return '';
  const up =
    tier.oversubscription === 1 ? 'non-blocking' : `${tier.oversubscription}:1 oversubscribed`;
  return `${tier.name} tier, ${up} up`;
}

interface Shape {
  readonly signature: string;
  readonly label: string;
  readonly detail: string;
  readonly children: readonly { readonly count: number; readonly shape: Shape }[];
}

function shapeOf(topology: Topology, node: TopologyNode): Shape {
  if (node.kind === 'server') {
    const run = runOfServer(topology, node.firstServer);
    const label = serverLabel(run);
    return { signature: label, label, detail: serverDetail(run), children: [] };
  }
  const children = collapse(childrenOf(topology, node).map((c) => shapeOf(topology, c)));
  const inner = children.map(runText).join(', ');
  return {
    signature: `${node.kind}[${inner}]|${groupDetail(topology, node)}`,
    label: `${node.kind}[${inner}]`,
    detail: groupDetail(topology, node),
    children,
  };
}

function collapse(shapes: readonly Shape[]): { count: number; shape: Shape }[] {
  const out: { count: number; shape: Shape }[] = [];
  for (const shape of shapes) {
    const last = out[out.length - 1];
    if (last !== undefined && last.shape.signature === shape.signature) last.count += 1;
    else out.push({ count: 1, shape });
  }
  return out;
}

function runText(run: { count: number; shape: Shape }): string {
  return run.count === 1 ? run.shape.label : `${run.count} × ${run.shape.label}`;
}

/** Renders the hierarchy, collapsing runs of identical siblings (`32 × hgx-h100 (...)`). */
export function renderHierarchy(topology: Topology): HierarchyPicture {
  const root = shapeOf(topology, rootNode(topology));
  const compact = root.children.map(runText).join(', ');
  const lines: string[] = [];
  const walk = (children: readonly { count: number; shape: Shape }[], indent: string): void => {
    children.forEach((child, i) => {
      const last = i === children.length - 1;
      const name =
        child.shape.children.length === 0
          ? child.shape.label
          : child.shape.label.replace(/\[.*$/, '');
      const count = child.count === 1 ? '' : `${child.count} × `;
      const detail = child.shape.detail === '' ? '' : `  (${child.shape.detail})`;
      lines.push(`${indent}${last ? '└─ ' : '├─ '}${count}${name}${detail}`);
      walk(child.shape.children, `${indent}${last ? '   ' : '│  '}`);
    });
  };
  walk(root.children, '');
  return { compact, lines };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
