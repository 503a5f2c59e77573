/** A collective operation, with NCCL's meaning of its size in bytes. */
export type CollectiveOp = 'all-reduce' | 'all-gather' | 'reduce-scatter' | 'all-to-all';

/**
 * How a collective is carried out:
 * - `ring`: one or more concurrent rings through every device (NCCL's ring);
 * - `tree`: NCCL's double binary tree across servers, chained inside each server (all-reduce);
 * - `hierarchical`: reduce-scatter inside servers, then across super-nodes or servers among
 *   same-position peers, then all-gather back down (NCCL's CollNet-free hierarchical scheme);
 * - `direct`: every device sends to every other at once (one-shot) over dedicated links;
 * - `local`: a single device, nothing to exchange.
 */
export type AlgorithmKind = 'ring' | 'tree' | 'hierarchical' | 'direct' | 'local';

/** One alpha-beta term: `seconds = alphaSeconds + betaSeconds`. */
export interface CostTerm {
  readonly algorithm: AlgorithmKind;
  /** Latency-bound steps (message rounds) on the critical path. */
  readonly steps: number;
  /** Latency of one step, microseconds (the mean over phases for a hierarchical result). */
  readonly alphaUs: number;
  /** steps x alpha. */
  readonly alphaSeconds: number;
  /** Bytes that cross the bottleneck, per device (or per flow). */
  readonly bytesOnBottleneck: number;
  /** The bandwidth those bytes move at, one direction, GB/s (1 GB = 1e9 bytes). */
  readonly betaGbs: number;
  /** bytesOnBottleneck / betaGbs. */
  readonly betaSeconds: number;
  /** What limits the bandwidth: a link, a NIC, a tier's uplinks, an OCS circuit pool. */
  readonly bottleneck: string;
  readonly seconds: number;
  /** One line on why the numbers are what they are. */
  readonly note: string;
}

/** One phase of a hierarchical collective. */
export interface PhaseCost extends CostTerm {
  /** e.g. `reduce-scatter in each server`. */
  readonly name: string;
  /** Devices (or groups) taking part in each instance of the phase. */
  readonly groupSize: number;
}

/** The breakdown of one algorithm's estimate: its terms and, when hierarchical, its phases. */
export interface CostBreakdown extends CostTerm {
  readonly phases: readonly PhaseCost[];
}

/** Builds a cost term from its parts. */
export function term(parts: {
  algorithm: AlgorithmKind;
  steps: number;
  alphaUs: number;
  bytesOnBottleneck: number;
  betaGbs: number;
  bottleneck: string;
  note: string;
}): CostTerm {
  const alphaSeconds = parts.steps * parts.alphaUs * 1e-6;
  const betaSeconds =
    parts.bytesOnBottleneck === 0 ? 0 : parts.bytesOnBottleneck / (parts.betaGbs * 1e9);
  return { ...parts, alphaSeconds, betaSeconds, seconds: alphaSeconds + betaSeconds };
}

/** Sums phases into one hierarchical breakdown. */
export function sumPhases(phases: readonly PhaseCost[], note: string): CostBreakdown {
  let steps = 0;
  let alphaSeconds = 0;
  let betaSeconds = 0;
  let bytes = 0;
  let worst: PhaseCost | undefined;
  for (const phase of phases) {
    steps += phase.steps;
    alphaSeconds += phase.alphaSeconds;
    betaSeconds += phase.betaSeconds;
    bytes += phase.bytesOnBottleneck;
    if (worst === undefined || phase.betaSeconds > worst.betaSeconds) worst = phase;
  }
  return {
    algorithm: 'hierarchical',
    steps,
    alphaUs: steps === 0 ? 0 : (alphaSeconds / steps) * 1e6,
    alphaSeconds,
    bytesOnBottleneck: bytes,
    betaGbs: betaSeconds === 0 ? 0 : bytes / betaSeconds / 1e9,
    betaSeconds,
    bottleneck: worst === undefined ? 'none' : `${worst.bottleneck} (${worst.name})`,
    seconds: alphaSeconds + betaSeconds,
    note,
    phases,
  };
}
