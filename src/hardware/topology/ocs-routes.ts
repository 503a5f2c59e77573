import type { Topology } from './topology.ts';

/**
 * Routes between super-nodes over the optical circuit switch: which circuits a flow between
 * two super-nodes rides, directly or relayed through other super-nodes, cached per topology.
 */

/** One leg of a super-node route: the circuits from one super-node to the next. */
export interface CircuitLeg {
  readonly from: number;
  readonly to: number;
  /** Total bandwidth of the circuits, one direction, GB/s (shared by all flows on the leg). */
  readonly gbs: number;
  /** `snA>snB`: the directed pool of circuits this leg uses. */
  readonly key: string;
}

/** How traffic between two super-nodes travels. */
export type SuperNodeRoute =
  | { readonly kind: 'circuits'; readonly legs: readonly CircuitLeg[] }
  | { readonly kind: 'packet' }
  | { readonly kind: 'unreachable' };

const superNodeRoutes = new WeakMap<Topology, Map<number, SuperNodeRoute>>();
const circuitGraphs = new WeakMap<Topology, Map<number, Map<number, number>>>();

/** Bandwidth of the circuits joining two super-nodes, one direction, GB/s (0 when none). */
export function circuitGbs(topology: Topology, a: number, b: number): number {
  let graph = circuitGraphs.get(topology);
  if (graph === undefined) {
    graph = new Map();
    for (const c of topology.cluster.ocs?.circuits ?? []) {
      const gbs = c.count * c.gbsPerCircuit;
      for (const [p, q] of [
        [c.a, c.b],
        [c.b, c.a],
      ] as const) {
        const row = graph.get(p) ?? new Map<number, number>();
        row.set(q, (row.get(q) ?? 0) + gbs);
        graph.set(p, row);
      }
    }
    circuitGraphs.set(topology, graph);
  }
  return graph.get(a)?.get(b) ?? 0;
}

/**
 * The route between super-nodes `a` and `b`: their own circuits when matched; otherwise the
 * packet fabric when there is one; otherwise the fewest-hop chain of circuits through other
 * super-nodes (widest first, then lowest index); otherwise unreachable. Cached per topology.
 */
export function superNodeRoute(topology: Topology, a: number, b: number): SuperNodeRoute {
  let cache = superNodeRoutes.get(topology);
  if (cache === undefined) {
    cache = new Map();
    superNodeRoutes.set(topology, cache);
  }
  const q = topology.cluster.superNodes.length;
  const cacheKey = a * q + b;
  const hit = cache.get(cacheKey);
  if (hit !== undefined) return hit;
  const leg = (from: number, to: number): CircuitLeg => ({
    from,
    to,
    gbs: circuitGbs(topology, from, to),
    key: `sn${from}>sn${to}`,
  });
  let found: SuperNodeRoute;
  if (circuitGbs(topology, a, b) > 0) found = { kind: 'circuits', legs: [leg(a, b)] };
  else if (topology.cluster.fabric !== null) found = { kind: 'packet' };
  else {
    // Breadth-first by hops; within a layer keep the widest bottleneck (ties: lower index).
    const width = new Map<number, number>([[a, Infinity]]);
    const parent = new Map<number, number>();
    let layer = [a];
    while (layer.length > 0 && !width.has(b)) {
      const next = new Map<number, number>();
      for (const u of layer) {
        for (let v = 0; v < q; v += 1) {
          const gbs = circuitGbs(topology, u, v);
          if (gbs <= 0 || width.has(v)) continue;
          const w = Math.min(width.get(u) ?? 0, gbs);
          if (w > (next.get(v) ?? 0)) {
            next.set(v, w);
            parent.set(v, u);
          }
        }
      }
      for (const [v, w] of next) width.set(v, w);
      layer = [...next.keys()].sort((p, r) => p - r);
    }
    if (!width.has(b)) found = { kind: 'unreachable' };
    else {
      const legs: CircuitLeg[] = [];
      for (let v = b; v !== a;) {
        const u = parent.get(v) ?? a;
        legs.unshift(leg(u, v));
        v = u;
      }
      found = { kind: 'circuits', legs };
    }
  }
  cache.set(cacheKey, found);
  return found;
}
