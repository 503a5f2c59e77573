import type { IndexedNode } from './cluster-index.ts';
import { compareNames } from './text.ts';

/** The usable nodes of one super-node (nodes without the label form one unnamed group). */
export interface SuperNodeRoom {
  /** The `superNode` label, undefined for the unlabelled group. */
  readonly superNode: string | undefined;
  readonly pod: string | undefined;
  /** In name order. */
  readonly nodes: readonly IndexedNode[];
}

/** Groups usable nodes (in name order) by super-node, in order of first appearance. */
export function groupBySuperNode(usable: readonly IndexedNode[]): SuperNodeRoom[] {
  const rooms = new Map<string | undefined, { pod: string | undefined; nodes: IndexedNode[] }>();
  for (const n of usable) {
    const room = rooms.get(n.superNode);
    if (room === undefined) rooms.set(n.superNode, { pod: n.pod, nodes: [n] });
    else room.nodes.push(n);
  }
  return [...rooms].map(([superNode, room]) => ({ superNode, ...room }));
}

const nameOf = (r: SuperNodeRoom): string => r.superNode ?? '';

/**
 * The fewest rooms whose capacities add up to `need`: the largest ones, except that the last
 * is the smallest that still covers what is left (best fit, which keeps big rooms whole for
 * the next job), preferring a room in a pod already used. Assumes the capacities suffice.
 */
function pickFewest(
  rooms: readonly SuperNodeRoom[],
  need: number,
  capacity: (r: SuperNodeRoom) => number,
): SuperNodeRoom[] {
  const sorted = [...rooms].sort(
    (a, b) => capacity(b) - capacity(a) || compareNames(nameOf(a), nameOf(b)),
  );
  let k = 0;
  for (let sum = 0; sum < need && k < sorted.length; k += 1) {
    const r = sorted[k];
    if (r !== undefined) sum += capacity(r);
  }
  const chosen = sorted.slice(0, k - 1);
  const left = need - chosen.reduce((s, r) => s + capacity(r), 0);
  const pods = new Set(chosen.map((r) => r.pod));
  let last: SuperNodeRoom | undefined;
  for (const r of sorted.slice(k - 1)) {
    if (capacity(r) < left) continue;
    if (last === undefined) {
      last = r;
      continue;
    }
    const samePod = Number(pods.has(last.pod)) - Number(pods.has(r.pod));
    if (samePod < 0 || (samePod === 0 && capacity(r) < capacity(last))) last = r;
  }
  return last === undefined ? chosen : [...chosen, last];
}

/**
 * Chooses the super-nodes for a job that needs `unitsNeeded` units of `unitSize` nodes each
 * (a unit is a pipeline that should stay inside one super-node; 1 when there is none): the
 * fewest super-nodes, then the fewest pods, then the least room left over, then by name.
 * Returns them largest first, or null when the units do not fit whole.
 */
export function selectSuperNodes(
  rooms: readonly SuperNodeRoom[],
  options: { readonly unitSize: number; readonly unitsNeeded: number },
): SuperNodeRoom[] | null {
  const { unitSize, unitsNeeded } = options;
  const capacity = (r: SuperNodeRoom): number => Math.floor(r.nodes.length / unitSize);
  const total = rooms.reduce((s, r) => s + capacity(r), 0);
  if (total < unitsNeeded) return null;
  const everywhere = pickFewest(rooms, unitsNeeded, capacity);
  const byPod = new Map<string | undefined, SuperNodeRoom[]>();
  for (const r of rooms) byPod.set(r.pod, [...(byPod.get(r.pod) ?? []), r]);
  if (byPod.size === 1) return everywhere;
  let best: { rooms: SuperNodeRoom[]; spare: number; pod: string } | undefined;
  for (const [pod, inPod] of byPod) {
    if (inPod.reduce((s, r) => s + capacity(r), 0) < unitsNeeded) continue;
    const picked = pickFewest(inPod, unitsNeeded, capacity);
    if (picked.length !== everywhere.length) continue;
    const spare = picked.reduce((s, r) => s + capacity(r), 0) - unitsNeeded;
    const name = pod ?? '';
    if (
      best === undefined ||
      spare < best.spare ||
      (spare === best.spare && compareNames(name, best.pod) < 0)
    )
      best = { rooms: picked, spare, pod: name };
  }
  return best?.rooms ?? everywhere;
}
