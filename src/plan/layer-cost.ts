import {
  flashAttentionFraction,
  gemmSeconds,
  memoryBoundSeconds,
  type DeviceSpeed,
} from './kernels.ts';
import type { LayerKind } from './model-profile.ts';
import type { SoftwareProfile } from './software.ts';
import type { Recompute } from './types.ts';

/** The shape of the work one GPU does for one micro-batch. */
export interface WorkShape {
  /** Tensor-parallel degree. */
  readonly tp: number;
  readonly sp: boolean;
  readonly microBatch: number;
  /** Full sequence length. */
  readonly seqLen: number;
  /** Context-parallel degree: each rank holds seqLen / cp tokens of every sequence. */
  readonly cp: number;
  readonly ep: number;
  readonly recompute: Recompute;
}

/** Seconds of one layer for one micro-batch on one GPU, by pass and part. */
export interface LayerSeconds {
  /** Forward: GEMMs, attention core, element-wise. */
  readonly forward: number;
  /** Backward including the recomputed forward work. */
  readonly backward: number;
  /** The attention core's forward and backward seconds (what context-parallel traffic overlaps). */
  readonly attentionForward: number;
  readonly attentionBackward: number;
  /** Tensor-parallel all-reduces (or reduce-scatter + all-gather pairs) per micro-batch. */
  readonly tpCollectives: number;
  /** Expert all-to-alls per micro-batch. */
  readonly allToAlls: number;
}

/**
 * The cost of one layer kind. Forward GEMMs run at their shape's efficiency (M = tokens on this
 * rank, N and K split by tensor parallelism); the backward does twice the GEMM work (input and
 * weight gradients). The attention core is flash attention (causal blocks skipped, FLOP-bound at
 * a fraction of the GEMM ceiling) or, without it, batched score GEMMs plus a memory-bound
 * softmax (and dropout) over every score. Norms, activations, residual adds, rotary embeddings and
 * MoE permutes are memory-bound passes over their tensors.
 */
export function layerSeconds(
  kind: LayerKind,
  speed: DeviceSpeed,
  shape: WorkShape,
  profile: SoftwareProfile,
  hidden: number,
  normsPerLayer: number,
): LayerSeconds {
  const { tp: t, microBatch: b, cp: c } = shape;
  const h = hidden;
  const tokens = (b * shape.seqLen) / c;
  const replicatedShare = shape.sp ? 1 / t : 1;

  // Weight GEMMs, forward.
  let gemm =
    gemmSeconds(speed, tokens, Math.ceil(kind.attnInWidth / t), h) +
    gemmSeconds(speed, tokens, h, Math.ceil(kind.attnOutWidth / t));
  let splitBytes = 0;
  let replicatedBytes = 0;
  let kernels = 14;
  const act = (f: number, gated: boolean): number => (gated ? 6 : 4) * f;
  if (kind.experts === 0) {
    const f = Math.ceil(kind.ffn / t);
    gemm +=
      gemmSeconds(speed, tokens, (kind.gated ? 2 : 1) * f, h) + gemmSeconds(speed, tokens, h, f);
    splitBytes += act(kind.ffn, kind.gated) * tokens;
  } else {
    const e = shape.ep;
    const local = kind.experts / e;
    const perExpert = Math.max(1, (tokens * e * kind.expertsPerToken) / kind.experts);
    const fe = Math.ceil(kind.expertFfn / t);
    gemm +=
      gemmSeconds(speed, tokens, kind.experts, h) +
      gemmSeconds(speed, perExpert, (kind.gated ? 2 : 1) * fe, h, local) +
      gemmSeconds(speed, perExpert, h, fe, local);
    if (kind.sharedFfn > 0) {
      const fs = Math.ceil(kind.sharedFfn / t);
      gemm +=
        gemmSeconds(speed, tokens, (kind.gated ? 2 : 1) * fs, h) +
        gemmSeconds(speed, tokens, h, fs);
    }
    splitBytes += act(kind.expertFfn, kind.gated) * tokens * kind.expertsPerToken;
    splitBytes += act(kind.sharedFfn, kind.gated) * tokens;
    // Permute and un-permute: each routed copy read and written twice.
    replicatedBytes += 8 * kind.expertsPerToken * h * tokens;
    kernels += 10;
  }

  // Norms (read + write), two residual adds (two reads, one write; a mask byte with dropout),
  // rotary embedding on q and k.
  replicatedBytes += normsPerLayer * 4 * h * tokens + 2 * (profile.dropout ? 7 : 6) * h * tokens;
  splitBytes += 4 * (kind.qWidth + kind.kvWidth / 2) * tokens;
  const elementwise = memoryBoundSeconds(
    speed,
    replicatedBytes * replicatedShare + splitBytes / t,
    kernels,
  );

  // Attention core.
  let attentionForward: number;
  let attentionBackward: number;
  const headsHere = Math.max(1, kind.heads / t);
  if (profile.flashAttention || kind.linear) {
    const flops = (kind.causalScoreFlopsPerToken * tokens) / t;
    const rate = speed.matmulFlops * speed.facts.gemmCeiling;
    attentionForward = flops / (rate * flashAttentionFraction.forward);
    // The backward recomputes the scores inside the kernel: 2.5x the forward's products.
    attentionBackward = (2.5 * flops) / (rate * flashAttentionFraction.backward);
  } else {
    const q = shape.seqLen / c;
    const count = b * headsHere;
    const scores = count * q * kind.spanKeys;
    const scoreGemm =
      gemmSeconds(speed, q, kind.spanKeys, kind.qkHeadDim, count) +
      gemmSeconds(speed, q, kind.vHeadDim, kind.spanKeys, count);
    // Scaled masked softmax reads and writes each score (2 + 2 B); dropout writes a mask and output.
    const forwardBytes = scores * (4 + (profile.dropout ? 5 : 0));
    const backwardBytes = scores * (6 + (profile.dropout ? 5 : 0));
    attentionForward = scoreGemm + memoryBoundSeconds(speed, forwardBytes, 2);
    attentionBackward = 2 * scoreGemm + memoryBoundSeconds(speed, backwardBytes, 2);
  }

  const forward = gemm + elementwise + attentionForward;
  let backward = 2 * gemm + 2 * elementwise + attentionBackward;
  let tpCollectives = 4;
  let allToAlls = kind.experts > 0 && shape.ep > 1 ? 4 : 0;
  if (shape.recompute === 'full') {
    backward += forward;
    tpCollectives += 2;
    if (allToAlls > 0) allToAlls += 2;
  } else if (shape.recompute === 'selective' && !profile.flashAttention) {
    backward += attentionForward;
  }
  return {
    forward,
    backward,
    attentionForward,
    attentionBackward,
    tpCollectives: t > 1 ? tpCollectives : 0,
    allToAlls,
  };
}
