import type { Cluster, ServerRun } from '../hardware/index.ts';
import { deviceSpeed, type DeviceSpeed } from './kernels.ts';
import type { Precision } from './types.ts';

/**
 * Where each pipeline stage runs. Ranks are ordered tp fastest, then cp, then dp, then pp, so
 * stage k owns devices [k N/p, (k+1) N/p): tensor-parallel groups stay inside a server and, on a
 * heterogeneous cluster, each stage lands on one accelerator type (the runs are contiguous).
 */
export interface StageDevice {
  readonly firstDevice: number;
  readonly speed: DeviceSpeed;
  readonly capacityBytes: number;
  /** Host link per GPU, bytes/s one direction (offload traffic). */
  readonly hostLinkBytesPerS: number;
  /** Host memory per GPU, bytes. */
  readonly hostBytesPerGpu: number;
  /** True when the stage's devices are not all of one accelerator type (the slowest counts). */
  readonly mixed: boolean;
}

function runsOver(cluster: Cluster, first: number, count: number): ServerRun[] {
  const out: ServerRun[] = [];
  for (const run of cluster.runs) {
    const end = run.firstDevice + run.count * run.devicesPerServer;
    if (run.firstDevice < first + count && end > first) out.push(run);
  }
  return out;
}

/** The device class of every stage for `pp` stages; null when some accelerator lacks the precision. */
export function stageDevices(
  cluster: Cluster,
  pp: number,
  precision: Precision,
): StageDevice[] | null {
  const per = cluster.deviceCount / pp;
  const out: StageDevice[] = [];
  for (let k = 0; k < pp; k += 1) {
    const first = k * per;
    const runs = runsOver(cluster, first, per);
    const kinds = new Set(runs.map((r) => r.accelerator.id));
    let worst: StageDevice | null = null;
    let capacity = Infinity;
    for (const run of runs) {
      const speed = deviceSpeed(run.accelerator, precision);
      if (speed === null) return null;
      capacity = Math.min(capacity, run.accelerator.memoryGiB * 1024 ** 3);
      const rate = speed.matmulFlops * speed.facts.gemmCeiling;
      if (worst === null || rate < worst.speed.matmulFlops * worst.speed.facts.gemmCeiling)
        worst = {
          firstDevice: first,
          speed,
          capacityBytes: 0,
          hostLinkBytesPerS: run.model.hostLinkGbsPerDirection * 1e9,
          hostBytesPerGpu: (run.model.hostMemoryGiB * 1024 ** 3) / run.devicesPerServer,
          mixed: kinds.size > 1,
        };
    }
    if (worst !== null) worst = { ...worst, capacityBytes: capacity };
    if (worst === null) return null;
    out.push(worst);
  }
  return out;
}

/**
 * Splits `costs` (one per layer, per stage: `costs[k][i]` is layer i's seconds on stage k) into
 * `pp` contiguous stages, each with at least one layer, minimising the slowest stage; `extra[k]`
 * is work fixed to stage k (the embedding on the first, the head and loss on the last). The
 * answer is each stage's layer count. Binary search on the bottleneck with a greedy fill:
 * O(layers x log(1/precision)).
 */
export function balanceStages(
  costs: readonly ArrayLike<number>[],
  extra: readonly number[],
  pp: number,
): number[] {
  const layers = costs[0]?.length ?? 0;
  if (pp === 1) return [layers];
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < pp; k += 1) {
    let total = extra[k] ?? 0;
    const row = costs[k] ?? [];
    for (let i = 0; i < row.length; i += 1) total += row[i] ?? 0;
    hi = Math.max(hi, total);
  }
  const fill = (limit: number): number[] | null => {
    const counts: number[] = [];
    let i = 0;
    for (let k = 0; k < pp; k += 1) {
      const row = costs[k] ?? [];
      let sum = extra[k] ?? 0;
      let n = 0;
      const leave = pp - k - 1;
      // Every stage takes at least one layer and leaves one for each later stage.
      while (i < layers - leave && (n === 0 || sum + (row[i] ?? 0) <= limit)) {
        sum += row[i] ?? 0;
        i += 1;
        n += 1;
      }
      if (sum > limit) return null;
      counts.push(n);
    }
    return i === layers ? counts : null;
  };
  let best = fill(hi) ?? evenSplit(layers, pp);
  for (let iter = 0; iter < 40 && hi - lo > hi * 1e-4; iter += 1) {
    const mid = (lo + hi) / 2;
    const counts = fill(mid);
    if (counts === null) lo = mid;
    else {
      hi = mid;
      best = counts;
    }
  }
  return best;
}

/** `layers` split as evenly as possible over `pp` stages (earlier stages take the remainder). */
export function evenSplit(layers: number, pp: number): number[] {
  const base = Math.floor(layers / pp);
  const rest = layers % pp;
  return Array.from({ length: pp }, (_, k) => base + (k < rest ? 1 : 0));
}
