import { CubeError } from '../core/index.ts';
import type {
  AttentionSpan,
  AttentionSpec,
  BlockLayout,
  LayerSpec,
  MlpSpec,
  ModelArchitecture,
  NormSpec,
  Positions,
  QkNorm,
} from './model.ts';
import type { LayerAttentionKind, ModelConfig } from './model-config.ts';

/**
 * Turns a validated model config into a resolved architecture. Free-text fields are read only
 * when they are exactly one of a few keywords (tables below); any other text must come with the
 * structured key that says what it means, or the build fails naming both keys. Nothing is guessed.
 */

/** Where a config came from, for error messages. */
export interface BuildOptions {
  /** The file (or `models.json`) the config came from. */
  readonly file?: string;
  /** The id to use when the config has none (a model file's base name). */
  readonly fallbackId?: string;
}

const normKeywords: Readonly<Record<string, NormSpec>> = {
  rmsnorm: { kind: 'rmsnorm', unitOffset: false },
  layernorm: { kind: 'layernorm', bias: true },
  'layernorm (no bias)': { kind: 'layernorm', bias: false },
};

const layoutKeywords: Readonly<Record<string, BlockLayout>> = {
  pre: { kind: 'pre' },
  'pre+post': { kind: 'sandwich' },
  post: { kind: 'post' },
};

const moeLayerPatternKeywords: ReadonlySet<string> = new Set(['every layer MoE']);

/** The default linear-attention block length (MiniMax's block_size). */
const defaultLinearBlockTokens = 256;

function invalid(options: BuildOptions, path: string, message: string, hint?: string): CubeError {
  const what = options.file ?? 'model';
  return new CubeError('INVALID_FILE', `${what} is invalid:\n  - ${path}: ${message}`, {
    where: { ...(options.file === undefined ? {} : { file: options.file }), path },
    ...(hint === undefined ? {} : { hint }),
  });
}

/** Free text that is not a keyword needs its structured key. */
function needsStructuredKey(
  options: BuildOptions,
  freeKey: string,
  value: string,
  structuredKey: string,
  example: string,
): CubeError {
  return invalid(
    options,
    freeKey,
    `"${value}" is descriptive text, not one of the keywords Cube reads; give the structured key "${structuredKey}"`,
    `add e.g. "${structuredKey}": ${example}`,
  );
}

function resolveNorm(c: ModelConfig, o: BuildOptions): NormSpec {
  if (c.norm !== undefined)
    return c.norm.kind === 'rmsnorm'
      ? { kind: 'rmsnorm', unitOffset: c.norm.unit_offset ?? false }
      : { kind: 'layernorm', bias: c.norm.bias };
  const text = c.norm_type ?? 'layernorm';
  const known = normKeywords[text];
  if (known === undefined)
    throw needsStructuredKey(o, 'norm_type', text, 'norm', '{"kind": "rmsnorm"}');
  return known;
}

function resolveLayout(c: ModelConfig, o: BuildOptions): BlockLayout {
  if (c.block_layout !== undefined)
    return c.block_layout.kind === 'parallel'
      ? { kind: 'parallel', norms: c.block_layout.norms }
      : { kind: c.block_layout.kind };
  const text = c.norm_layout ?? 'pre';
  const known = layoutKeywords[text];
  if (known === undefined)
    throw needsStructuredKey(
      o,
      'norm_layout',
      text,
      'block_layout',
      '{"kind": "parallel", "norms": 1}',
    );
  return known;
}

function resolvePositions(c: ModelConfig, o: BuildOptions): Positions {
  const p = c.positions;
  const learnedRows = (rows: number | undefined, path: string): Positions => {
    const r = rows ?? c.max_position_embeddings ?? undefined;
    if (r === undefined)
      throw invalid(
        o,
        path,
        'learned positions need a row count: give max_position_embeddings or positions.rows',
      );
    return { kind: 'learned', rows: r };
  };
  if (p !== undefined) {
    switch (p.kind) {
      case 'rope':
        return {
          kind: 'rope',
          rotaryFraction: p.rotary_fraction ?? 1,
          noRopeLayerInterval: p.no_rope_layer_interval ?? null,
        };
      case 'learned':
        return learnedRows(p.rows, 'positions.rows');
      case 'alibi':
      case 'none':
        return { kind: p.kind };
      default:
        return p satisfies never;
    }
  }
  const text = c.position_encoding ?? 'rope';
  switch (text) {
    case 'rope':
      return { kind: 'rope', rotaryFraction: 1, noRopeLayerInterval: null };
    case 'alibi':
    case 'none':
      return { kind: text };
    case 'learned':
      return learnedRows(undefined, 'max_position_embeddings');
    default:
      throw needsStructuredKey(
        o,
        'position_encoding',
        text,
        'positions',
        '{"kind": "rope", "rotary_fraction": 0.5}',
      );
  }
}

function resolveAttentionPattern(c: ModelConfig, o: BuildOptions): readonly LayerAttentionKind[] {
  if (c.attention_layer_pattern !== undefined) return c.attention_layer_pattern;
  const sliding = c.sliding_window ?? null;
  if (c.attention_pattern === undefined) return sliding === null ? ['full'] : ['sliding'];
  if (c.attention_pattern === 'full causal' && sliding === null) return ['full'];
  throw needsStructuredKey(
    o,
    'attention_pattern',
    c.attention_pattern,
    'attention_layer_pattern',
    sliding === null ? '["full"]' : '["sliding", "full"]',
  );
}

function resolveQkNorm(c: ModelConfig, norm: NormSpec): QkNorm {
  const kind = c.qk_norm ?? 'none';
  if (kind === 'none' || kind === 'l2') return { kind };
  return {
    kind,
    shape: c.qk_norm_shape === 'per_head' ? 'per-head' : 'head-dim',
    // A LayerNorm on q/k follows the model's norms in having a bias or not.
    bias: kind === 'layernorm' && norm.kind === 'layernorm' && norm.bias,
  };
}

function isMoeLayer(c: ModelConfig, index: number, o: BuildOptions): boolean {
  const moe = c.moe;
  if (moe === undefined || moe === null) return false;
  let step = moe.interleave_moe_layer_step;
  if (step === undefined) {
    const text = moe.moe_layer_pattern;
    if (text !== undefined && !moeLayerPatternKeywords.has(text))
      throw needsStructuredKey(
        o,
        'moe.moe_layer_pattern',
        text,
        'moe.interleave_moe_layer_step',
        '1 (every layer after first_k_dense_replace) or 2 (every other layer)',
      );
    step = 1;
  }
  return index >= (moe.first_k_dense_replace ?? 0) && (index + 1) % step === 0;
}

/** Builds the resolved architecture; throws INVALID_FILE naming the key that is missing or unclear. */
export function buildModel(c: ModelConfig, options: BuildOptions = {}): ModelArchitecture {
  const o = options;
  const id = c.id ?? o.fallbackId;
  if (id === undefined) throw invalid(o, 'id', 'required key is missing');
  const heads = c.num_attention_heads;
  if (c.num_key_value_heads === null)
    throw invalid(o, 'num_key_value_heads', 'is null (unknown); give the number of KV heads');
  if (c.tied_embeddings === null)
    throw invalid(o, 'tied_embeddings', 'is null (unknown); give true or false');
  const kvHeads = c.num_key_value_heads ?? heads;
  let headDim = c.head_dim ?? null;
  if (headDim === null) {
    if (c.hidden_size % heads !== 0)
      throw invalid(
        o,
        'head_dim',
        `required because hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${heads}`,
      );
    headDim = c.hidden_size / heads;
  }
  if (c.mla !== undefined && c.mla !== null) {
    // DeepSeek-style MLA has neither; counting them would need shapes no source gives.
    if ((c.attention_bias ?? 'none') !== 'none')
      throw invalid(o, 'attention_bias', 'MLA attention is modelled without biases; use "none"');
    if ((c.qk_norm ?? 'none') !== 'none')
      throw invalid(o, 'qk_norm', 'MLA normalises its latents, not q/k; use "none"');
  }
  const norm = resolveNorm(c, o);
  const pattern = resolveAttentionPattern(c, o);
  const gated = c.gated_mlp ?? false;
  const dense = c.intermediate_size ?? null;

  const spanFor = (kind: 'full' | 'sliding' | 'chunked'): AttentionSpan => {
    if (kind === 'full') return { kind: 'full' };
    if (kind === 'sliding') {
      const w = c.sliding_window ?? null;
      if (w === null)
        throw invalid(
          o,
          'sliding_window',
          'required because attention_layer_pattern has "sliding"',
        );
      return { kind: 'sliding', windowTokens: w };
    }
    const chunk = c.attention_chunk_size;
    if (chunk === undefined)
      throw invalid(
        o,
        'attention_chunk_size',
        'required because attention_layer_pattern has "chunked"',
      );
    return { kind: 'chunked', chunkTokens: chunk };
  };

  const layers: LayerSpec[] = [];
  for (let index = 0; index < c.num_layers; index++) {
    const kind = pattern[index % pattern.length] ?? 'full';
    let attention: AttentionSpec;
    if (kind === 'linear') {
      attention = {
        kind: 'linear',
        heads,
        headDim,
        outputGate: c.linear_attention?.output_gate ?? false,
        blockTokens: c.linear_attention?.block_size ?? defaultLinearBlockTokens,
      };
    } else if (c.mla !== undefined && c.mla !== null) {
      attention = {
        kind: 'mla',
        heads,
        qLoraRank: c.mla.q_lora_rank,
        kvLoraRank: c.mla.kv_lora_rank,
        qkNopeHeadDim: c.mla.qk_nope_head_dim,
        qkRopeHeadDim: c.mla.qk_rope_head_dim,
        vHeadDim: c.mla.v_head_dim,
        span: spanFor(kind),
      };
    } else {
      attention = { kind: 'softmax', heads, kvHeads, headDim, span: spanFor(kind) };
    }
    let mlp: MlpSpec;
    const moe = c.moe;
    if (moe !== undefined && moe !== null && isMoeLayer(c, index, o)) {
      mlp = {
        kind: 'moe',
        experts: moe.num_experts,
        expertsPerToken: moe.experts_per_token,
        expertIntermediateSize: moe.moe_intermediate_size,
        sharedIntermediateSize:
          (moe.num_shared_experts ?? 0) > 0 ? (moe.shared_expert_intermediate_size ?? 0) : 0,
        sharedExpertGate: moe.shared_expert_gate ?? false,
        routerBias: moe.router_bias ?? false,
        gated,
      };
    } else {
      if (dense === null)
        throw invalid(
          o,
          'intermediate_size',
          `required because layer ${index} has a dense MLP${moe === undefined || moe === null ? '' : ' (it is not an MoE layer)'}`,
        );
      mlp = { kind: 'dense', intermediateSize: dense, gated };
    }
    layers.push({ index, attention, mlp });
  }
  const hasDense = layers.some((l) => l.mlp.kind === 'dense');

  return {
    id,
    family: c.family ?? null,
    name: c.name ?? id,
    hfId: c.hf_id ?? null,
    hiddenSize: c.hidden_size,
    vocabSize: c.vocab_size,
    maxPositionEmbeddings: c.max_position_embeddings ?? null,
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim,
    intermediateSize: hasDense ? dense : null,
    mlpActivation: c.mlp_activation ?? (gated ? 'silu' : 'gelu'),
    gatedMlp: gated,
    tiedEmbeddings: c.tied_embeddings ?? false,
    positions: resolvePositions(c, o),
    embeddingNorm: c.embedding_norm ?? false,
    norm,
    blockLayout: resolveLayout(c, o),
    finalNorm: c.final_norm ?? true,
    attentionBias: c.attention_bias ?? 'none',
    mlpBias: c.mlp_bias ?? false,
    qkNorm: resolveQkNorm(c, norm),
    layers,
    reported: {
      totalBillions: c.total_params_reported_b ?? null,
      activeBillions: c.active_params_reported_b ?? null,
    },
    unconfirmed: c.unconfirmed ?? [],
    source: c.source ?? null,
    notes: c.notes ?? null,
  };
}
