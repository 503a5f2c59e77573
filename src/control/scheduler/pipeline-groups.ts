import { count } from './text.ts';
import type { ParallelLayout, SchedulerJobSpec } from './types.ts';

/** A rank's coordinates in its job's layout. */
export interface RankCoordinates {
  readonly tp: number;
  readonly dp: number;
  readonly pp: number;
}

/**
 * The layout coordinates of a rank in the Megatron-LM / DeepSpeed order: tensor parallel
 * varies fastest, then data parallel, and the pipeline stage slowest, so
 * `rank = tp + tpSize × (dp + dpSize × pp)`. A pipeline stage is a contiguous block of
 * `tp × dp` ranks and a rank's pipeline neighbour is the rank `tp × dp` further on.
 */
export function rankCoordinates(rank: number, layout: ParallelLayout): RankCoordinates {
  return {
    tp: rank % layout.tp,
    dp: Math.floor(rank / layout.tp) % layout.dp,
    pp: Math.floor(rank / (layout.tp * layout.dp)),
  };
}

const positiveInteger = (n: number): boolean => Number.isInteger(n) && n >= 1;

/**
 * Why a spec can never be placed as written (bad rank counts, a layout that does not multiply
 * out to the world size, a tensor-parallel group that would straddle nodes); null when fine.
 */
export function specProblem(spec: SchedulerJobSpec): string | null {
  const { nodes, devicesPerNode } = spec.ranks;
  if (!positiveInteger(nodes)) return `ranks.nodes must be a positive integer, not ${nodes}`;
  if (!positiveInteger(devicesPerNode))
    return `ranks.devicesPerNode must be a positive integer, not ${devicesPerNode}`;
  const layout = spec.layout;
  if (layout === undefined) return null;
  for (const key of ['tp', 'pp', 'dp'] as const)
    if (!positiveInteger(layout[key]))
      return `layout.${key} must be a positive integer, not ${layout[key]}`;
  const world = nodes * devicesPerNode;
  const product = layout.tp * layout.pp * layout.dp;
  if (product !== world)
    return (
      `layout tp×pp×dp = ${layout.tp}×${layout.pp}×${layout.dp} = ${product} does not match ` +
      `the world size ${nodes}×${devicesPerNode} = ${world} (ranks.nodes × ranks.devicesPerNode)`
    );
  if (layout.tp > devicesPerNode)
    return (
      `tp=${layout.tp} cannot fit inside one node: a tensor-parallel group needs ` +
      `${count(layout.tp, 'device')} on one node and the job asks for ${devicesPerNode} ` +
      `per node; lower layout.tp or raise ranks.devicesPerNode`
    );
  if (devicesPerNode % layout.tp !== 0)
    return (
      `tp=${layout.tp} does not divide ${devicesPerNode} devices per node, so some ` +
      `tensor-parallel groups would straddle two nodes; make ranks.devicesPerNode a multiple ` +
      `of layout.tp`
    );
  return null;
}

/**
 * The job's node positions (0 .. nodes-1) grouped by pipeline links: two positions share a
 * group when a rank on one has its next-stage neighbour on the other. Each group lists its
 * positions ascending (stage order), groups ordered by their first position. Without a layout,
 * or with `pp = 1`, every position is a group of its own. With the usual shapes the groups are
 * the pipelines: `pp` nodes each when a stage fills whole nodes, one chain when a node holds
 * several stages.
 */
export function pipelineGroups(spec: SchedulerJobSpec): number[][] {
  const { nodes, devicesPerNode } = spec.ranks;
  const layout = spec.layout;
  const parent = Array.from({ length: nodes }, (_, i) => i);
  const find = (i: number): number => {
    let root = i;
    while (parent[root] !== root) root = parent[root] ?? root;
    for (let j = i; parent[j] !== root;) {
      const next = parent[j] ?? root;
      parent[j] = root;
      j = next;
    }
    return root;
  };
  if (layout !== undefined && layout.pp > 1) {
    const stageRanks = layout.tp * layout.dp;
    const world = nodes * devicesPerNode;
    for (let rank = 0; rank + stageRanks < world; rank += 1) {
      const a = find(Math.floor(rank / devicesPerNode));
      const b = find(Math.floor((rank + stageRanks) / devicesPerNode));
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  }
  const groups = new Map<number, number[]>();
  for (let i = 0; i < nodes; i += 1) {
    const root = find(i);
    const group = groups.get(root);
    if (group === undefined) groups.set(root, [i]);
    else group.push(i);
  }
  return [...groups.values()];
}
