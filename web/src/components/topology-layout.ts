import { Graph, layout } from '@dagrejs/dagre';
import type { SuperNodeGroup } from '../cluster-groups.ts';

/** Sizes of the drawing, in flow units (pixels at zoom 1). */
export const cell = 12;
export const cellGap = 2;
const cellsPerRow = 8;
const serverPad = 6;
const serverHeader = 16;
const serverGap = 8;
const superHeader = 26;
const superPad = 10;

/** Where a server box sits inside its super-node. */
export interface ServerBox {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** A super-node's size and the boxes of its servers. */
export interface SuperNodeBox {
  readonly width: number;
  readonly height: number;
  readonly servers: readonly ServerBox[];
}

function serverSize(devices: number, nodes: number): { width: number; height: number } {
  const rows = Math.max(1, Math.ceil(devices / cellsPerRow)) + Math.max(0, nodes - 1);
  return {
    // + 2: the box's border.
    width: cellsPerRow * (cell + cellGap) - cellGap + 2 * serverPad + 2,
    height: serverHeader + rows * (cell + cellGap) - cellGap + serverPad,
  };
}

/**
 * Lays a super-node's servers out in a grid whose width over height is about `aspect`, so a
 * super-node of 32 eight-GPU servers is a compact block of 256 cells, not a long row.
 */
export function superNodeBox(group: SuperNodeGroup, aspect = 0.8): SuperNodeBox {
  const n = group.servers.length;
  const sizes = group.servers.map((s) => serverSize(s.devices, s.nodes.length));
  const columnWidth = Math.max(1, ...sizes.map((s) => s.width)) + serverGap;
  const rowHeight = Math.max(1, ...sizes.map((s) => s.height)) + serverGap;
  const columns = Math.max(
    1,
    Math.min(n, Math.round(Math.sqrt((aspect * n * rowHeight) / columnWidth))),
  );
  const boxes: ServerBox[] = [];
  let y = superHeader;
  let width = 0;
  for (let row = 0; row * columns < n; row += 1) {
    const inRow = sizes.slice(row * columns, (row + 1) * columns);
    const rowHeight = Math.max(...inRow.map((s) => s.height));
    let x = superPad;
    for (const size of inRow) {
      boxes.push({ x, y, width: size.width, height: size.height });
      x += size.width + serverGap;
    }
    width = Math.max(width, x - serverGap + superPad);
    y += rowHeight + serverGap;
  }
  return {
    width: Math.max(width, 230),
    height: y - serverGap + superPad,
    servers: boxes,
  };
}

/** An optical circuit switch and the super-nodes (indices into the groups) it links. */
export interface FabricBox {
  readonly name: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly superNodes: readonly number[];
}

/** Positions of the drawing's top-level boxes (top-left corners). */
export interface TopologyLayout {
  readonly fabrics: readonly FabricBox[];
  readonly superNodes: readonly { x: number; y: number; box: SuperNodeBox }[];
}

export const fabricSize = { width: 220, height: 44 };

/**
 * Lays out the super-nodes (dagre, top to bottom) under the optical circuit switches that
 * link them. A switch is drawn only where the nodes say they sit behind one (their `ocs`
 * label): super-node labels alone (a local `cube up` cluster has two) say nothing about the
 * fabric between them. Super-nodes go in rows of at most `perRow`, each row one rank below
 * the last, so a cluster of many super-nodes stays a readable block instead of one very wide
 * row.
 */
export function layoutTopology(groups: readonly SuperNodeGroup[], perRow = 4): TopologyLayout {
  // One super-node fills the view on its own: lay it out wide. Several sit side by side:
  // each a little taller than wide, so the row is not a thin strip.
  const boxes = groups.map((g) => superNodeBox(g, groups.length === 1 ? 2.5 : 0.8));
  const switches = new Map<string, number[]>();
  groups.forEach((group, i) => {
    if (group.ocs === null) return;
    const linked = switches.get(group.ocs) ?? [];
    linked.push(i);
    switches.set(group.ocs, linked);
  });
  const fabricIds = [...switches.keys()].sort();
  const g = new Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 40, ranksep: 60, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  fabricIds.forEach((_, f) => g.setNode(`fabric${f}`, { ...fabricSize }));
  boxes.forEach((box, i) => {
    g.setNode(`sn${i}`, { width: box.width, height: box.height });
    const row = Math.floor(i / perRow);
    const ocs = groups[i]?.ocs ?? null;
    // Rows below the first hang under the super-node above them, which keeps columns.
    if (row === 0) {
      if (ocs !== null) g.setEdge(`fabric${fabricIds.indexOf(ocs)}`, `sn${i}`);
    } else g.setEdge(`sn${i - perRow}`, `sn${i}`, { minlen: 1 });
  });
  // Keep super-nodes in name order, left to right, within each row.
  const constraints = boxes.flatMap((_, i) =>
    i % perRow === 0 ? [] : [{ left: `sn${i - 1}`, right: `sn${i}` }],
  );
  layout(g, { constraints });
  const topLeft = (id: string): { x: number; y: number } => {
    const n = g.node(id) as { x: number; y: number; width: number; height: number };
    return { x: n.x - n.width / 2, y: n.y - n.height / 2 };
  };
  return {
    fabrics: fabricIds.map((name, f) => ({
      name,
      ...topLeft(`fabric${f}`),
      ...fabricSize,
      superNodes: switches.get(name) ?? [],
    })),
    superNodes: boxes.map((box, i) => ({ ...topLeft(`sn${i}`), box })),
  };
}
