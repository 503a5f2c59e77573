import {
  attentionScoreFlopsPerToken,
  trainingFlopsPerToken,
  type LayerSpec,
  type ModelArchitecture,
} from '../zoo/index.ts';
// The zoo's per-layer weight shapes: the planner needs each layer's parts, not just totals.
import { attentionWidths, layerParams, blockNormCount } from '../zoo/layer-shapes.ts';

/**
 * What the planner needs to know about a model, computed once per request: its layers grouped
 * into kinds (identical layers cost the same, so a 126-layer dense model is one kind), each
 * kind's matrix shapes and parameter counts, and the model FLOPs per token that MFU counts.
 */

/** One group of identical layers. */
export interface LayerKind {
  readonly spec: LayerSpec;
  /** Output width of the fused input projections (q, k, v or the MLA down/up projections), per token. */
  readonly attnInWidth: number;
  /** Input width of the attention output projection. */
  readonly attnOutWidth: number;
  readonly qWidth: number;
  readonly kvWidth: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Attention parameters split by tensor parallelism (matrices) and replicated (vectors). */
  readonly denseParams: number;
  /** All routed experts' parameters of this layer (0 for dense layers). */
  readonly expertParams: number;
  /** Parameters of the largest single expert, for buffer sizing. */
  readonly oneExpertParams: number;
  /** Dense MLP width (0 for MoE). */
  readonly ffn: number;
  readonly gated: boolean;
  readonly experts: number;
  readonly expertsPerToken: number;
  readonly expertFfn: number;
  readonly sharedFfn: number;
  /** Forward attention score/value FLOPs per token, non-causal and causal. */
  readonly scoreFlopsPerToken: number;
  readonly causalScoreFlopsPerToken: number;
  /** Keys a query attends to (the span), for unfused score GEMM shapes. */
  readonly spanKeys: number;
  readonly qkHeadDim: number;
  readonly vHeadDim: number;
  readonly linear: boolean;
}

export interface ModelProfile {
  readonly model: ModelArchitecture;
  readonly seqLen: number;
  readonly kinds: readonly LayerKind[];
  /** Kind index of every layer, in order. */
  readonly layerKind: readonly number[];
  readonly layers: number;
  readonly hidden: number;
  readonly vocab: number;
  /** Token embedding (+ learned positions, embedding norm) parameters. */
  readonly embeddingParams: number;
  /** LM head parameters (the vocab x hidden matrix, a copy on the last stage when tied and pp > 1). */
  readonly headParams: number;
  readonly finalNormParams: number;
  readonly tied: boolean;
  readonly normsPerLayer: number;
  readonly isMoe: boolean;
  /** Largest expert count of any layer (0 for dense models). */
  readonly experts: number;
  /** Model training FLOPs per token (forward + backward, Megatron convention: no causal halving). */
  readonly modelFlopsPerToken: number;
}

function kindKey(layer: LayerSpec): string {
  return JSON.stringify([layer.attention, layer.mlp]);
}

/** Builds the profile of a model at a sequence length. */
export function modelProfile(model: ModelArchitecture, seqLen: number): ModelProfile {
  const h = model.hiddenSize;
  const kinds: LayerKind[] = [];
  const keys = new Map<string, number>();
  const layerKind: number[] = [];
  for (const layer of model.layers) {
    const key = kindKey(layer);
    let index = keys.get(key);
    if (index === undefined) {
      index = kinds.length;
      keys.set(key, index);
      kinds.push(buildKind(model, layer, seqLen));
    }
    layerKind.push(index);
  }
  let embeddingParams = model.vocabSize * h;
  if (model.positions.kind === 'learned') embeddingParams += model.positions.rows * h;
  const normWidth = (model.norm.kind === 'layernorm' && model.norm.bias ? 2 : 1) * h;
  if (model.embeddingNorm) embeddingParams += normWidth;
  return {
    model,
    seqLen,
    kinds,
    layerKind,
    layers: model.layers.length,
    hidden: h,
    vocab: model.vocabSize,
    embeddingParams,
    headParams: model.vocabSize * h,
    finalNormParams: model.finalNorm ? normWidth : 0,
    tied: model.tiedEmbeddings,
    normsPerLayer: blockNormCount(model),
    isMoe: kinds.some((k) => k.experts > 0),
    experts: Math.max(0, ...kinds.map((k) => k.experts)),
    modelFlopsPerToken: trainingFlopsPerToken(model, { seqLen, causal: false }),
  };
}

function buildKind(model: ModelArchitecture, layer: LayerSpec, seqLen: number): LayerKind {
  const h = model.hiddenSize;
  const p = layerParams(model, layer);
  const a = layer.attention;
  const w = attentionWidths(a);
  const m = p.mlp;
  const mlp = layer.mlp;
  const span =
    a.kind === 'linear'
      ? Math.min(a.blockTokens, seqLen)
      : a.span.kind === 'full'
        ? seqLen
        : Math.min(a.span.kind === 'sliding' ? a.span.windowTokens : a.span.chunkTokens, seqLen);
  return {
    spec: layer,
    attnInWidth: Math.max(1, Math.round((p.attention.matmul - w.out * h) / h)),
    attnOutWidth: w.out,
    qWidth: w.q,
    kvWidth: w.k + w.v,
    heads: a.heads,
    kvHeads: a.kind === 'softmax' ? a.kvHeads : a.heads,
    denseParams:
      p.attention.matmul +
      p.attention.vectors +
      m.denseMatmul +
      m.denseVectors +
      m.sharedMatmul +
      m.sharedVectors +
      m.routerMatmul +
      m.routerVectors +
      p.norms,
    expertParams: m.experts * (m.expertMatmul + m.expertVectors),
    oneExpertParams: m.expertMatmul + m.expertVectors,
    ffn: mlp.kind === 'dense' ? mlp.intermediateSize : 0,
    gated: mlp.gated,
    experts: m.experts,
    expertsPerToken: m.expertsPerToken,
    expertFfn: mlp.kind === 'moe' ? mlp.expertIntermediateSize : 0,
    sharedFfn: mlp.kind === 'moe' ? mlp.sharedIntermediateSize : 0,
    scoreFlopsPerToken: attentionScoreFlopsPerToken(a, { seqLen, causal: false }),
    causalScoreFlopsPerToken: attentionScoreFlopsPerToken(a, { seqLen, causal: true }),
    spanKeys: span,
    qkHeadDim: w.qkHeadDim,
    vHeadDim: w.vHeadDim,
    linear: a.kind === 'linear',
  };
}
