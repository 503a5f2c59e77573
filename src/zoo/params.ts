import { layerParams, normParams } from './layer-shapes.ts';
import type { ModelArchitecture } from './model.ts';

/**
 * Parameter counts derived from the architecture. The convention is the Hugging Face one: the
 * total is the sum of every weight tensor of the text model's checkpoint (embedding counted once
 * when tied; learned position tables and norms included; MTP modules and vision encoders not).
 * Active parameters are everything except the routed experts a token does not select.
 */
export interface ParameterBreakdown {
  /** Token embedding, learned position table and any embedding norm. */
  readonly embedding: number;
  /** Attention projections, their biases, q/k norms and latent norms, over all layers. */
  readonly attention: number;
  /** Dense MLP layers (weights and biases). */
  readonly denseMlp: number;
  /** All routed experts of all MoE layers. */
  readonly routedExperts: number;
  /** The routed experts one token uses (experts per token in each MoE layer). */
  readonly activeRoutedExperts: number;
  /** Shared (always-on) experts. */
  readonly sharedExperts: number;
  /** Router weights (hidden x experts), routing-score biases and shared-expert gates. */
  readonly routers: number;
  /** Block norms of every layer plus the final norm. */
  readonly norms: number;
  /** The LM head; 0 when tied to the embedding. */
  readonly head: number;
  readonly total: number;
  readonly active: number;
}

/** The full breakdown; every count is an exact integer. */
export function parameterBreakdown(model: ModelArchitecture): ParameterBreakdown {
  const h = model.hiddenSize;
  let embedding = model.vocabSize * h;
  if (model.positions.kind === 'learned') embedding += model.positions.rows * h;
  if (model.embeddingNorm) embedding += normParams(model.norm, h);
  let attention = 0;
  let denseMlp = 0;
  let routedExperts = 0;
  let activeRoutedExperts = 0;
  let sharedExperts = 0;
  let routers = 0;
  let norms = model.finalNorm ? normParams(model.norm, h) : 0;
  for (const layer of model.layers) {
    const p = layerParams(model, layer);
    attention += p.attention.matmul + p.attention.vectors;
    denseMlp += p.mlp.denseMatmul + p.mlp.denseVectors;
    const expert = p.mlp.expertMatmul + p.mlp.expertVectors;
    routedExperts += p.mlp.experts * expert;
    activeRoutedExperts += p.mlp.expertsPerToken * expert;
    sharedExperts += p.mlp.sharedMatmul + p.mlp.sharedVectors;
    routers += p.mlp.routerMatmul + p.mlp.routerVectors;
    norms += p.norms;
  }
  const head = model.tiedEmbeddings ? 0 : model.vocabSize * h;
  const shared = embedding + attention + denseMlp + sharedExperts + routers + norms + head;
  return {
    embedding,
    attention,
    denseMlp,
    routedExperts,
    activeRoutedExperts,
    sharedExperts,
    routers,
    norms,
    head,
    total: shared + routedExperts,
    active: shared + activeRoutedExperts,
  };
}

/** Total parameters (exact). */
export function totalParams(model: ModelArchitecture): number {
  return parameterBreakdown(model).total;
}

/** Parameters a token uses: all but the unselected routed experts (exact). */
export function activeParams(model: ModelArchitecture): number {
  return parameterBreakdown(model).active;
}

/**
 * Parameters without the token embedding and the LM head (the convention of Gemma's and
 * Qwen's "non-embedding" figures). The head is excluded whether tied or not.
 */
export function nonEmbeddingParams(
  model: ModelArchitecture,
  options: { readonly active?: boolean } = {},
): number {
  const b = parameterBreakdown(model);
  const tokenEmbedding = model.vocabSize * model.hiddenSize;
  return (options.active === true ? b.active : b.total) - tokenEmbedding - b.head;
}
