import { attentionWidths, layerParams } from './layer-shapes.ts';
import type { AttentionSpan, AttentionSpec, ModelArchitecture } from './model.ts';

/**
 * FLOPs per token, derived from the architecture. Conventions: a multiply-accumulate is 2 FLOPs;
 * only matrix products count (norms, activations, softmax and biases are ignored, as Megatron
 * does); the embedding lookup is free, the LM head is a product; MoE layers count the router,
 * the shared experts and only the experts a token selects; training is forward + backward =
 * 3 x forward. The attention score and value products grow with the sequence length; whether
 * causal masking halves them is an explicit option.
 */

/** Options for FLOP counts. */
export interface FlopsOptions {
  /** Tokens per sequence. */
  readonly seqLen: number;
  /**
   * true: a query attends only to itself and earlier keys (mean span (s+1)/2 for full
   * attention), as causal kernels compute it. false: the Megatron convention of
   * Narayanan et al. (2021), every query against s keys (capped by a window or chunk).
   */
  readonly causal: boolean;
}

export interface FlopsBreakdown {
  /** Weight products of the transformer layers (attention projections, MLPs, routers). */
  readonly layersMatmulFlops: number;
  /** Score (QK^T) and value (AV) products, or the state products of linear attention. */
  readonly attentionScoreFlops: number;
  /** The LM head (hidden x vocab), counted even when tied. */
  readonly headFlops: number;
  readonly totalFlops: number;
}

/** Mean number of keys each query attends to over a sequence of `seqLen` tokens. */
export function meanAttendedKeys(span: AttentionSpan, options: FlopsOptions): number {
  const s = options.seqLen;
  const triangle = (n: number): number => (n * (n + 1)) / 2;
  switch (span.kind) {
    case 'full':
      return options.causal ? (s + 1) / 2 : s;
    case 'sliding': {
      const w = span.windowTokens;
      if (!options.causal) return Math.min(w, s);
      if (w >= s) return (s + 1) / 2;
      // The first w queries see a growing prefix; every later one sees exactly w keys.
      return (triangle(w) + (s - w) * w) / s;
    }
    case 'chunked': {
      const c = span.chunkTokens;
      if (!options.causal) return Math.min(c, s);
      const full = Math.floor(s / c);
      const rest = s - full * c;
      return (full * triangle(c) + triangle(rest)) / s;
    }
    default:
      return span satisfies never;
  }
}

/** Forward FLOPs per token of one layer's attention score/value (or linear-state) products. */
export function attentionScoreFlopsPerToken(a: AttentionSpec, options: FlopsOptions): number {
  const w = attentionWidths(a);
  switch (a.kind) {
    case 'softmax':
    case 'mla':
      return 2 * a.heads * (w.qkHeadDim + w.vHeadDim) * meanAttendedKeys(a.span, options);
    case 'linear': {
      // Block-wise linear attention: a quadratic product inside each block, plus the state
      // update (k^T v) and read-out (q S), each heads x d x d per token.
      const intra = meanAttendedKeys({ kind: 'chunked', chunkTokens: a.blockTokens }, options);
      return 2 * a.heads * 2 * a.headDim * intra + 2 * 2 * a.heads * a.headDim * a.headDim;
    }
    default:
      return a satisfies never;
  }
}

/** Forward FLOPs per token, by part. */
export function forwardFlopsPerToken(
  model: ModelArchitecture,
  options: FlopsOptions,
): FlopsBreakdown {
  let layersMatmulFlops = 0;
  let attentionScoreFlops = 0;
  for (const layer of model.layers) {
    const p = layerParams(model, layer);
    const m = p.mlp;
    const weights =
      p.attention.matmul +
      m.denseMatmul +
      m.expertsPerToken * m.expertMatmul +
      m.sharedMatmul +
      m.routerMatmul;
    layersMatmulFlops += 2 * weights;
    attentionScoreFlops += attentionScoreFlopsPerToken(layer.attention, options);
  }
  const headFlops = 2 * model.vocabSize * model.hiddenSize;
  return {
    layersMatmulFlops,
    attentionScoreFlops,
    headFlops,
    totalFlops: layersMatmulFlops + attentionScoreFlops + headFlops,
  };
}

/** Model FLOPs per token of one training step: forward + backward = 3 x forward. */
export function trainingFlopsPerToken(model: ModelArchitecture, options: FlopsOptions): number {
  return 3 * forwardFlopsPerToken(model, options).totalFlops;
}

/** Training FLOPs per token in the Megatron convention (no causal halving of attention). */
export function megatronTrainingFlopsPerToken(
  model: ModelArchitecture,
  options: { readonly seqLen: number },
): number {
  return trainingFlopsPerToken(model, { seqLen: options.seqLen, causal: false });
}

/**
 * The closed form of Narayanan et al. (2021) for a GPT without recomputation, per iteration:
 * 72 B s l h^2 (1 + s/(6h) + V/(12 l h)).
 */
export function megatronGptFlopsPerIteration(options: {
  readonly batch: number;
  readonly seqLen: number;
  readonly layers: number;
  readonly hidden: number;
  readonly vocab: number;
}): number {
  const { batch: b, seqLen: s, layers: l, hidden: h, vocab: v } = options;
  return 72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h));
}

/**
 * FLOPs the hardware executes per token, counting recomputation: selective recomputation
 * repeats the attention score/value products, full recomputation repeats the whole forward
 * (the head excepted, which is not inside a checkpointed layer).
 */
export function executedTrainingFlopsPerToken(
  model: ModelArchitecture,
  options: FlopsOptions & { readonly recompute: 'none' | 'selective' | 'full' },
): number {
  const f = forwardFlopsPerToken(model, options);
  switch (options.recompute) {
    case 'none':
      return 3 * f.totalFlops;
    case 'selective':
      return 3 * f.totalFlops + f.attentionScoreFlops;
    case 'full':
      return 3 * f.totalFlops + f.layersMatmulFlops + f.attentionScoreFlops;
    default:
      return options.recompute satisfies never;
  }
}
