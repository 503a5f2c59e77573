import { CubeError } from '../../core/index.ts';
import type { AlgorithmKind, CollectiveOp, CostBreakdown } from './collective-cost.ts';
import { directCost } from './direct.ts';
import { hierarchicalCost } from './hierarchical.ts';
import { groupParticipants } from './participants.ts';
import { channelsFor, ringCost, ringProfile, treeCost, type RingProfile } from './ring.ts';
import type { Topology } from './topology.ts';

/** The collectives Cube models, in the order `cube` lists them. */
export const collectiveOps: readonly CollectiveOp[] = [
  'all-reduce',
  'all-gather',
  'reduce-scatter',
  'all-to-all',
];

/** What to estimate: an operation of `bytes` over a set of devices. */
export interface CollectiveRequest {
  readonly op: CollectiveOp;
  /**
   * NCCL's size: the buffer each device reduces (all-reduce), the gathered output
   * (all-gather), the input each device scatters (reduce-scatter), or each device's send
   * buffer (all-to-all).
   */
  readonly bytes: number;
  /** Global device indices or addresses (`sn1/srv07/gpu3`), in any order. */
  readonly devices: readonly (number | string)[];
  /** Force one algorithm instead of picking the fastest. */
  readonly algorithm?: AlgorithmKind;
}

/** An algorithm that was considered, with its time or why it does not apply. */
export interface CollectiveCandidate {
  readonly algorithm: AlgorithmKind;
  /** Seconds; null when the algorithm does not apply. */
  readonly seconds: number | null;
  readonly reason?: string;
}

/** The estimate of one collective, with its explanation. */
export interface CollectiveEstimate {
  readonly op: CollectiveOp;
  readonly bytes: number;
  readonly devices: number;
  /** The algorithm used: the fastest unless one was forced. */
  readonly algorithm: AlgorithmKind;
  readonly seconds: number;
  /** bytes / seconds, GB/s. */
  readonly algBwGbs: number;
  /** NCCL's bus bandwidth: algBw x 2(n-1)/n for all-reduce, x (n-1)/n otherwise. */
  readonly busBwGbs: number;
  readonly breakdown: CostBreakdown;
  readonly candidates: readonly CollectiveCandidate[];
}

/** NCCL's bus-bandwidth factor of an operation over `n` devices. */
export function busBandwidthFactor(op: CollectiveOp, n: number): number {
  if (n <= 1) return 0;
  return op === 'all-reduce' ? (2 * (n - 1)) / n : (n - 1) / n;
}

/**
 * Estimates a collective over any set of devices with the alpha-beta model,
 * `t = steps x alpha + bytes_on_the_bottleneck / beta`, for every algorithm that applies
 * (ring, tree, hierarchical, direct), and reports the fastest (or the forced one) with a
 * breakdown a planner or a human can read. Cost: linear in the number of devices.
 */
export function estimateCollective(
  topology: Topology,
  request: CollectiveRequest,
): CollectiveEstimate {
  const { op, bytes } = request;
  if (!Number.isFinite(bytes) || bytes < 0)
    throw new CubeError(
      'INVALID_VALUE',
      `collective size must be a non-negative number of bytes, got ${bytes}`,
      {
        where: { field: 'bytes' },
      },
    );
  if (request.devices.length === 0)
    throw new CubeError('INVALID_VALUE', 'a collective needs at least one device', {
      where: { field: 'devices' },
    });
  const p = groupParticipants(topology, request.devices);
  const n = p.count;
  if (n === 1) {
    const breakdown: CostBreakdown = {
      algorithm: 'local',
      steps: 0,
      alphaUs: 0,
      alphaSeconds: 0,
      bytesOnBottleneck: 0,
      betaGbs: 0,
      betaSeconds: 0,
      bottleneck: 'none',
      seconds: 0,
      note: 'a single device: nothing to exchange',
      phases: [],
    };
    return {
      op,
      bytes,
      devices: 1,
      algorithm: 'local',
      seconds: 0,
      algBwGbs: 0,
      busBwGbs: 0,
      breakdown,
      candidates: [{ algorithm: 'local', seconds: 0 }],
    };
  }

  // Ring and tree run over the same links: compute what limits them once.
  let profile: RingProfile | undefined;
  const rings = (): RingProfile =>
    (profile ??= ringProfile(topology, p.servers, channelsFor(p.servers)));
  const options: { algorithm: AlgorithmKind; cost: () => CostBreakdown | string }[] = [];
  if (op !== 'all-to-all')
    options.push({ algorithm: 'ring', cost: () => ringCost(p, op, bytes, rings()) });
  if (op === 'all-reduce')
    options.push({
      algorithm: 'tree',
      cost: () =>
        p.servers.length < 2
          ? 'the tree runs across servers; all devices are in one server'
          : treeCost(p, bytes, rings()),
    });
  if (op !== 'all-to-all')
    options.push({
      algorithm: 'hierarchical',
      cost: () => hierarchicalCost(topology, p, op, bytes),
    });
  options.push({ algorithm: 'direct', cost: () => directCost(topology, p, op, bytes) });

  const candidates: CollectiveCandidate[] = [];
  let best: CostBreakdown | undefined;
  let forced: CostBreakdown | undefined;
  for (const option of options) {
    const cost = option.cost();
    if (typeof cost === 'string') {
      candidates.push({ algorithm: option.algorithm, seconds: null, reason: cost });
      continue;
    }
    candidates.push({ algorithm: option.algorithm, seconds: cost.seconds });
    if (best === undefined || cost.seconds < best.seconds) best = cost;
    if (request.algorithm === option.algorithm) forced = cost;
  }
  const chosen = request.algorithm === undefined ? best : forced;
  if (chosen === undefined) {
    const why =
      candidates.find((c) => c.algorithm === request.algorithm)?.reason ??
      `it is not modeled for ${op}`;
    throw new CubeError(
      'INVALID_VALUE',
      `algorithm ${request.algorithm ?? '?'} does not apply: ${why}`,
      {
        where: { field: 'algorithm' },
        hint: 'leave the algorithm out to get the fastest that applies',
      },
    );
  }
  const algBwGbs = chosen.seconds === 0 ? 0 : bytes / chosen.seconds / 1e9;
  return {
    op,
    bytes,
    devices: n,
    algorithm: chosen.algorithm,
    seconds: chosen.seconds,
    algBwGbs,
    busBwGbs: algBwGbs * busBandwidthFactor(op, n),
    breakdown: chosen,
    candidates,
  };
}
