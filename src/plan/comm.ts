import {
  estimateCollective,
  pathBetween,
  type CollectiveOp,
  type Topology,
} from '../hardware/index.ts';

/**
 * Collective and point-to-point times on the actual topology, through the hardware module's
 * cost model, cached per (operation, bytes, group shape). A group is `size` devices starting at
 * `first` with a fixed `stride` (the rank order is tp fastest, then cp, then dp, then pp), so a
 * search that prices thousands of candidates estimates each distinct group shape once.
 */
export class CommCache {
  readonly #topology: Topology;
  readonly #efficiency: number;
  readonly #collectives = new Map<string, number>();
  readonly #paths = new Map<string, { latencyS: number; bytesPerS: number }>();

  constructor(topology: Topology, linkEfficiency: number) {
    this.#topology = topology;
    this.#efficiency = linkEfficiency;
  }

  /** Seconds of one collective over the group; 0 for a group of one. */
  collective(op: CollectiveOp, bytes: number, first: number, stride: number, size: number): number {
    if (size <= 1 || bytes <= 0) return 0;
    const key = `${op}|${Math.round(bytes)}|${first}|${stride}|${size}`;
    const cached = this.#collectives.get(key);
    if (cached !== undefined) return cached;
    const devices: number[] = [];
    for (let i = 0; i < size; i += 1) devices.push(first + i * stride);
    const seconds =
      estimateCollective(this.#topology, { op, bytes, devices }).seconds / this.#efficiency;
    this.#collectives.set(key, seconds);
    return seconds;
  }

  /** Seconds to send `bytes` from device `a` to device `b`. */
  sendSeconds(a: number, b: number, bytes: number): number {
    if (a === b || bytes <= 0) return 0;
    const key = `${a}|${b}`;
    let path = this.#paths.get(key);
    if (path === undefined) {
      const route = pathBetween(this.#topology, a, b);
      path = {
        latencyS: route.latencyUs * 1e-6,
        bytesPerS: route.gbsPerDirection * 1e9 * this.#efficiency,
      };
      this.#paths.set(key, path);
    }
    return path.latencyS + bytes / path.bytesPerS;
  }
}
