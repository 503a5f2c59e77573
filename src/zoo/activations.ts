import { attentionWidths, blockNormCount } from './layer-shapes.ts';
import type { AttentionSpan, LayerSpec, ModelArchitecture } from './model.ts';

/**
 * Activation bytes stored for the backward pass, after Korthikanti et al. 2022 ("Reducing
 * Activation Recomputation in Large Transformer Models"): 16-bit activations, 1-byte dropout
 * masks, each operation storing the inputs its backward needs. For a GPT layer that is
 * s b h (34 + 5 a s / h) bytes. Extended here to GQA/MQA (k and v at their own widths), MLA
 * (latents and per-head q/k/v), gated MLPs (gate, up, activation and product tensors), MoE (the
 * router probabilities and, per token, the copies and intermediates of its chosen experts plus the
 * shared experts), q/k norms, sliding or chunked spans (scores stored for the span only) and linear
 * attention (no s^2 term: scores only inside a block).
 */

export interface ActivationOptions {
  readonly seqLen: number;
  readonly microBatch: number;
  /** Tensor-parallel degree t. */
  readonly tp?: number;
  /** Sequence parallelism: shards the parts tensor parallelism leaves replicated. */
  readonly sp?: boolean;
  /**
   * `selective` recomputes the attention core (scores, softmax, dropout) and stores the rest;
   * `full` stores only each layer's input.
   */
  readonly recompute?: 'none' | 'selective' | 'full';
  /** Dropout masks on attention probabilities and residual branches, as in the paper (default true). */
  readonly dropout?: boolean;
}

/** One layer's stored bytes by how tensor parallelism splits them. */
export interface LayerActivationParts {
  /** Tensors every tensor-parallel rank holds whole unless sequence parallelism shards them. */
  readonly replicatedBytes: number;
  /** Tensors split t ways by tensor parallelism (heads, intermediate widths, expert shards). */
  readonly splitBytes: number;
  /** The score/softmax/dropout tensors that grow with s x span; recomputed by `selective`. */
  readonly attentionCoreBytes: number;
}

function storedSpan(span: AttentionSpan, seqLen: number): number {
  switch (span.kind) {
    case 'full':
      return seqLen;
    case 'sliding':
      return Math.min(span.windowTokens, seqLen);
    case 'chunked':
      return Math.min(span.chunkTokens, seqLen);
    default:
      return span satisfies never;
  }
}

/** The parts of one layer's activations for a micro-batch (before any division by t). */
export function layerActivationParts(
  model: ModelArchitecture,
  layer: LayerSpec,
  options: ActivationOptions,
): LayerActivationParts {
  const sb = options.seqLen * options.microBatch;
  const h = model.hiddenSize;
  const dropout = options.dropout ?? true;
  const mask = dropout ? sb * h : 0;
  let replicated = 0;
  let split = 0;
  let core = 0;

  // Block norms store their inputs.
  replicated += blockNormCount(model) * 2 * sb * h;

  const a = layer.attention;
  const w = attentionWidths(a);
  replicated += 2 * sb * h + mask; // the projections' shared input; the branch dropout mask
  switch (a.kind) {
    case 'softmax':
    case 'mla': {
      split += 2 * sb * (w.q + w.k + w.v) + 2 * sb * w.out;
      const qk = model.qkNorm;
      if (a.kind === 'softmax' && (qk.kind === 'rmsnorm' || qk.kind === 'layernorm'))
        split += 2 * sb * (w.q + w.k); // the q/k norms' inputs
      if (a.kind === 'mla') {
        // Latent norms store their inputs and the up-projections their (normed) inputs.
        const qLatent = a.qLoraRank === null ? 0 : 2 * 2 * sb * a.qLoraRank;
        replicated += qLatent + 2 * sb * (a.kvLoraRank + a.qkRopeHeadDim) + 2 * sb * a.kvLoraRank;
      }
      const scores = a.heads * sb * storedSpan(a.span, options.seqLen);
      // softmax output (2 B); with dropout also its mask (1 B) and output (2 B).
      core += (dropout ? 5 : 2) * scores;
      break;
    }
    case 'linear': {
      // qkv before and after the activation, the attention output, the gate before and after
      // its sigmoid, the normed output and the out-projection input.
      split += 2 * sb * 3 * w.q * 2 + 2 * sb * w.out * 5;
      core += 2 * a.heads * sb * Math.min(a.blockTokens, options.seqLen);
      break;
    }
    default:
      a satisfies never;
  }

  const m = layer.mlp;
  const sharesInput = model.blockLayout.kind === 'parallel' && model.blockLayout.norms === 1;
  replicated += (sharesInput ? 0 : 2 * sb * h) + mask;
  const perWidth = (gated: boolean): number => (gated ? 8 : 4); // bytes per token per unit width
  if (m.kind === 'dense') {
    split += perWidth(m.gated) * sb * m.intermediateSize;
  } else {
    replicated += 2 * sb * m.experts; // router probabilities
    replicated += m.expertsPerToken * (2 * sb * h + 2 * sb * h); // dispatched copies and outputs
    split += m.expertsPerToken * perWidth(m.gated) * sb * m.expertIntermediateSize;
    split += perWidth(m.gated) * sb * m.sharedIntermediateSize;
  }
  return { replicatedBytes: replicated, splitBytes: split, attentionCoreBytes: core };
}

/** Bytes stored per layer for one micro-batch on one tensor-parallel rank, one entry per layer. */
export function activationBytesPerLayer(
  model: ModelArchitecture,
  options: ActivationOptions,
): readonly number[] {
  const t = options.tp ?? 1;
  const sp = options.sp ?? false;
  const recompute = options.recompute ?? 'none';
  const sb = options.seqLen * options.microBatch;
  return model.layers.map((layer) => {
    if (recompute === 'full') return (2 * sb * model.hiddenSize) / (sp ? t : 1);
    const p = layerActivationParts(model, layer, options);
    const core = recompute === 'selective' ? 0 : p.attentionCoreBytes;
    return p.replicatedBytes / (sp ? t : 1) + (p.splitBytes + core) / t;
  });
}

/** Bytes stored by all transformer layers for one micro-batch on one tensor-parallel rank. */
export function activationBytes(model: ModelArchitecture, options: ActivationOptions): number {
  return activationBytesPerLayer(model, options).reduce((sum, b) => sum + b, 0);
}

/**
 * Bytes outside the layers, as the paper counts them: the embedding dropout mask, the final
 * norm's and the head's inputs (2 s b h each) and the fp32 logits for the loss (4 s b V / t).
 */
export function nonLayerActivationBytes(
  model: ModelArchitecture,
  options: ActivationOptions,
): number {
  const t = options.tp ?? 1;
  const replicated = (options.sp ?? false) ? t : 1;
  const sbh = options.seqLen * options.microBatch * model.hiddenSize;
  const mask = (options.dropout ?? true) ? sbh : 0;
  return (
    (mask + 4 * sbh) / replicated + (4 * options.seqLen * options.microBatch * model.vocabSize) / t
  );
}
