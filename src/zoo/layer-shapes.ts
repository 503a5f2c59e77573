import type { AttentionSpec, LayerSpec, MlpSpec, ModelArchitecture, NormSpec } from './model.ts';

/**
 * Weight counts of one layer's parts, split into matrix weights (which cost 2 FLOPs per
 * multiply-accumulate per token) and the small vectors (biases, norm weights) which do not.
 * Internal: params.ts, flops.ts and activations.ts all read from here.
 */

/** Parameters of one norm over `width` features. */
export function normParams(norm: NormSpec, width: number): number {
  return norm.kind === 'layernorm' && norm.bias ? 2 * width : width;
}

/** Norms per layer that the block layout places. */
export function blockNormCount(model: ModelArchitecture): number {
  const layout = model.blockLayout;
  switch (layout.kind) {
    case 'pre':
    case 'post':
      return 2;
    case 'sandwich':
      return 4;
    case 'parallel':
      return layout.norms;
    default:
      return layout satisfies never;
  }
}

/** The widths of the tensors an attention layer produces per token. */
export interface AttentionWidths {
  /** Query width (heads x q/k head dim). */
  readonly q: number;
  /** Key width as stored for the score product. */
  readonly k: number;
  /** Value width. */
  readonly v: number;
  /** Width entering the output projection. */
  readonly out: number;
  /** q/k head dim and v head dim, for the score and value products. */
  readonly qkHeadDim: number;
  readonly vHeadDim: number;
}

export function attentionWidths(a: AttentionSpec): AttentionWidths {
  switch (a.kind) {
    case 'softmax':
      return {
        q: a.heads * a.headDim,
        k: a.kvHeads * a.headDim,
        v: a.kvHeads * a.headDim,
        out: a.heads * a.headDim,
        qkHeadDim: a.headDim,
        vHeadDim: a.headDim,
      };
    case 'mla': {
      const qk = a.qkNopeHeadDim + a.qkRopeHeadDim;
      // After decompression every head has its own k and v (the naive, non-absorbed form).
      return {
        q: a.heads * qk,
        k: a.heads * qk,
        v: a.heads * a.vHeadDim,
        out: a.heads * a.vHeadDim,
        qkHeadDim: qk,
        vHeadDim: a.vHeadDim,
      };
    }
    case 'linear': {
      const w = a.heads * a.headDim;
      return { q: w, k: w, v: w, out: w, qkHeadDim: a.headDim, vHeadDim: a.headDim };
    }
    default:
      return a satisfies never;
  }
}

export interface AttentionParams {
  /** Matrix weights (multiplied per token). */
  readonly matmul: number;
  /** Biases, q/k norms, latent norms, the output norm of linear attention. */
  readonly vectors: number;
}

export function attentionParams(model: ModelArchitecture, a: AttentionSpec): AttentionParams {
  const h = model.hiddenSize;
  const w = attentionWidths(a);
  const bias = model.attentionBias;
  const outBias = bias === 'all' ? h : 0;
  switch (a.kind) {
    case 'softmax': {
      const matmul = h * w.q + 2 * h * w.k + w.out * h;
      let vectors = (bias === 'none' ? 0 : w.q + 2 * w.k) + outBias;
      const qk = model.qkNorm;
      if (qk.kind === 'rmsnorm' || qk.kind === 'layernorm') {
        const perVector = qk.bias ? 2 : 1;
        vectors += perVector * (qk.shape === 'head-dim' ? 2 * a.headDim : w.q + w.k);
      }
      return { matmul, vectors };
    }
    case 'mla': {
      const qProj = a.qLoraRank === null ? h * w.q : h * a.qLoraRank + a.qLoraRank * w.q;
      const kvA = h * (a.kvLoraRank + a.qkRopeHeadDim);
      const kvB = a.kvLoraRank * a.heads * (a.qkNopeHeadDim + a.vHeadDim);
      const latentNorms =
        (a.qLoraRank === null ? 0 : normParams(model.norm, a.qLoraRank)) +
        normParams(model.norm, a.kvLoraRank);
      return { matmul: qProj + kvA + kvB + w.out * h, vectors: latentNorms + outBias };
    }
    case 'linear': {
      const gate = a.outputGate ? h * w.q : 0;
      const matmul = 3 * h * w.q + gate + w.out * h;
      const vectors =
        (bias === 'none' ? 0 : 3 * w.q) +
        outBias +
        (a.outputGate ? normParams(model.norm, w.out) : 0);
      return { matmul, vectors };
    }
    default:
      return a satisfies never;
  }
}

/** Matrix weights and biases of one feed-forward network of width `f`. */
export function ffnParams(
  model: ModelArchitecture,
  f: number,
  gated: boolean,
): { readonly matmul: number; readonly vectors: number } {
  const h = model.hiddenSize;
  return {
    matmul: (gated ? 3 : 2) * h * f,
    vectors: model.mlpBias ? (gated ? 2 * f : f) + h : 0,
  };
}

export interface MlpParams {
  readonly denseMatmul: number;
  readonly denseVectors: number;
  /** One routed expert (matrix weights + biases); 0 for dense layers. */
  readonly expertMatmul: number;
  readonly expertVectors: number;
  readonly experts: number;
  readonly expertsPerToken: number;
  readonly sharedMatmul: number;
  readonly sharedVectors: number;
  /** Router weights (hidden x experts) and the shared-expert gate (hidden x 1). */
  readonly routerMatmul: number;
  /** The routing-score bias. */
  readonly routerVectors: number;
}

export function mlpParams(model: ModelArchitecture, m: MlpSpec): MlpParams {
  const h = model.hiddenSize;
  if (m.kind === 'dense') {
    const d = ffnParams(model, m.intermediateSize, m.gated);
    return {
      denseMatmul: d.matmul,
      denseVectors: d.vectors,
      expertMatmul: 0,
      expertVectors: 0,
      experts: 0,
      expertsPerToken: 0,
      sharedMatmul: 0,
      sharedVectors: 0,
      routerMatmul: 0,
      routerVectors: 0,
    };
  }
  const e = ffnParams(model, m.expertIntermediateSize, m.gated);
  const s =
    m.sharedIntermediateSize > 0
      ? ffnParams(model, m.sharedIntermediateSize, m.gated)
      : { matmul: 0, vectors: 0 };
  return {
    denseMatmul: 0,
    denseVectors: 0,
    expertMatmul: e.matmul,
    expertVectors: e.vectors,
    experts: m.experts,
    expertsPerToken: m.expertsPerToken,
    sharedMatmul: s.matmul,
    sharedVectors: s.vectors,
    routerMatmul: h * m.experts + (m.sharedExpertGate ? h : 0),
    routerVectors: m.routerBias ? m.experts : 0,
  };
}

/** Everything of one layer, for callers that walk the layers. */
export interface LayerParams {
  readonly layer: LayerSpec;
  readonly attention: AttentionParams;
  readonly mlp: MlpParams;
  readonly norms: number;
}

export function layerParams(model: ModelArchitecture, layer: LayerSpec): LayerParams {
  return {
    layer,
    attention: attentionParams(model, layer.attention),
    mlp: mlpParams(model, layer.mlp),
    norms: blockNormCount(model) * normParams(model.norm, model.hiddenSize),
  };
}
