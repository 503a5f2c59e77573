import {
  estimateCollective,
  pathBetween,
  type CollectiveOp,
  type Topology,
} from '../hardware/index.ts';

/**
 * Collective and point-to-point times on the actual topology, through the hardware module's
 * cost model. A group is `size` devices starting at `first` with a fixed `stride` (the rank
 * order is tp fastest, then cp, then dp, then pp). Every algorithm of the alpha-beta model is
 * linear in the message size (steps x alpha + bytes on the bottleneck / beta), so each group
 * shape is estimated once per algorithm, at a reference size, and a query of any size takes the
 * fastest line: a search that prices thousands of candidates touches the topology a few dozen
 * times.
 */
/** The message size each algorithm's line is measured at. */
const referenceBytes = 1e9;

export class CommCache {
  readonly #topology: Topology;
  readonly #efficiency: number;
  readonly #lines = new Map<string, readonly { alphaS: number; perByteS: number }[]>();
  readonly #paths = new Map<string, { latencyS: number; bytesPerS: number }>();

  constructor(topology: Topology, linkEfficiency: number) {
    this.#topology = topology;
    this.#efficiency = linkEfficiency;
  }

  /** Seconds of one collective over the group; 0 for a group of one. */
  collective(op: CollectiveOp, bytes: number, first: number, stride: number, size: number): number {
    if (size <= 1 || bytes <= 0) return 0;
    const key = this.#groupKey(op, first, stride, size);
    let lines = this.#lines.get(key);
    if (lines === undefined) {
      const devices: number[] = [];
      for (let i = 0; i < size; i += 1) devices.push(first + i * stride);
      // Two sizes fix every algorithm's line (its candidates carry their seconds).
      const small = estimateCollective(this.#topology, { op, bytes: referenceBytes, devices });
      const large = estimateCollective(this.#topology, { op, bytes: 2 * referenceBytes, devices });
      lines = small.candidates.flatMap((c, i) => {
        const at2 = large.candidates[i]?.seconds;
        if (c.seconds === null || at2 === null || at2 === undefined) return [];
        const perByteS = (at2 - c.seconds) / referenceBytes;
        return [{ alphaS: Math.max(0, c.seconds - perByteS * referenceBytes), perByteS }];
      });
      this.#lines.set(key, lines);
    }
    let best = Infinity;
    for (const line of lines) best = Math.min(best, line.alphaS + line.perByteS * bytes);
    return best / this.#efficiency;
  }

  /**
   * A group inside one server costs the same in every server of the same model at the same local
   * offsets, so such groups share one key (a tensor-parallel group per pipeline stage is one
   * estimate, not one per stage).
   */
  #groupKey(op: CollectiveOp, first: number, stride: number, size: number): string {
    const last = first + (size - 1) * stride;
    for (const run of this.#topology.cluster.runs) {
      const end = run.firstDevice + run.count * run.devicesPerServer;
      if (first < run.firstDevice || first >= end) continue;
      const server = Math.floor((first - run.firstDevice) / run.devicesPerServer);
      const lastServer = Math.floor((last - run.firstDevice) / run.devicesPerServer);
      if (last < end && server === lastServer) {
        const local = (first - run.firstDevice) % run.devicesPerServer;
        return `${op}|srv:${run.model.id}:${run.devicesPerServer}|${local}|${stride}|${size}`;
      }
      break;
    }
    return `${op}|${first}|${stride}|${size}`;
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
