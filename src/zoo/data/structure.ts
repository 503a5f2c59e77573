import type { ModelConfig, StructuredKeys } from '../model-config.ts';

/**
 * The structured overlay on models.json: for each model whose free-text fields carry meaning
 * beyond a plain keyword (`attention_pattern`, `moe.moe_layer_pattern`, `position_encoding`,
 * `norm_type`, `norm_layout`), or whose entry leaves a shape-relevant field null, the exact facts,
 * each with a one-line reason. The catalog merges these over the entry and validates the result
 * with the model-file schema; the free text itself is never parsed.
 */

/** One structured fact and why it holds. */
export interface Fact<T> {
  readonly value: T;
  readonly reason: string;
}

type Facts<T> = { readonly [K in keyof T]?: Fact<NonNullable<T[K]>> };

/** What the overlay may state for one model. */
export type ModelOverlay = Facts<StructuredKeys> &
  Facts<Pick<ModelConfig, 'num_key_value_heads' | 'tied_embeddings'>> & {
    readonly moe?: Facts<
      Pick<
        NonNullable<ModelConfig['moe']>,
        'interleave_moe_layer_step' | 'shared_expert_gate' | 'router_bias'
      >
    >;
  };

function fact<T>(value: T, reason: string): Fact<T> {
  return { value, reason };
}

const gemmaNorm = fact(
  { kind: 'rmsnorm', unit_offset: true } as const,
  'Gemma RMSNorm scales by (1 + w): one weight vector per norm, no bias',
);
const fullEveryLayer = (why: string): Fact<readonly ['full']> => fact(['full'] as const, why);
const slidingEveryLayer = (why: string): Fact<readonly ['sliding']> =>
  fact(['sliding'] as const, why);
const everyLayerAfterDense = (why: string): Fact<number> => fact(1, why);
const mlaRope = fact(
  { kind: 'rope', rotary_fraction: 64 / 192 } as const,
  'decoupled RoPE: 64 of the 192 q/k dims per head rotate (mla.qk_rope_head_dim); no parameters',
);
const llama4Attention = {
  attention_layer_pattern: fact(
    ['chunked', 'chunked', 'chunked', 'full'] as const,
    'RoPE layers use chunked attention; every 4th layer (3, 7, ...) is a global NoPE layer',
  ),
  attention_chunk_size: fact(8192, 'attention_chunk_size 8192 in the Llama 4 text config'),
  positions: fact(
    { kind: 'rope', no_rope_layer_interval: 4 } as const,
    'no_rope_layer_interval 4: layers 3, 7, ... use no positional encoding',
  ),
};
const gemma2Pattern = fact(
  ['sliding', 'full'] as const,
  'Gemma 2 alternates: even layers 0, 2, 4, ... slide over 4096 tokens, odd layers are global',
);
const gemma3Pattern = fact(
  ['sliding', 'sliding', 'sliding', 'sliding', 'sliding', 'full'] as const,
  'Gemma 3: five local (sliding) layers, then one global (layers 5, 11, 17, ...)',
);
const gemma3Rope = fact(
  { kind: 'rope' } as const,
  'RoPE everywhere; only the base differs (10k local, 1M global), which adds no parameters',
);

/** The overlay, by model id. Models absent here need nothing beyond their models.json entry. */
export const modelStructure: Readonly<Record<string, ModelOverlay>> = {
  'llama-4-scout': {
    ...llama4Attention,
    moe: {
      interleave_moe_layer_step: fact(
        1,
        'interleave_moe_layer_step 1: every layer is MoE (the 16384-wide dense MLP is unused)',
      ),
    },
  },
  'llama-4-maverick': {
    ...llama4Attention,
    moe: {
      interleave_moe_layer_step: fact(
        2,
        'interleave_moe_layer_step 2: layers 1, 3, 5, ... are MoE; the other 24 are dense (16384)',
      ),
    },
  },
  'qwen1.5-moe-a2.7b': {
    moe: {
      shared_expert_gate: fact(true, 'Qwen2-MoE: shared_expert_gate Linear(hidden, 1) per layer'),
    },
  },
  'qwen2-57b-a14b': {
    moe: {
      shared_expert_gate: fact(true, 'Qwen2-MoE: shared_expert_gate Linear(hidden, 1) per layer'),
    },
  },
  'qwen3-30b-a3b': {
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'moe-layer-freq [1]*48: every layer is MoE (decoder_sparse_step 1)',
      ),
    },
  },
  'deepseek-v2': {
    positions: mlaRope,
    attention_layer_pattern: fullEveryLayer('MLA with full causal attention on every layer'),
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'layer 0 dense (first_k_dense_replace 1), layers 1-59 MoE (moe_layer_freq 1)',
      ),
    },
  },
  'deepseek-v2-lite': {
    positions: mlaRope,
    attention_layer_pattern: fullEveryLayer('MLA with full causal attention on every layer'),
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'layer 0 dense (first_k_dense_replace 1), layers 1-26 MoE (moe_layer_freq 1)',
      ),
    },
  },
  'deepseek-v3': {
    positions: mlaRope,
    attention_layer_pattern: fullEveryLayer('MLA with full causal attention on every layer'),
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'layers 0-2 dense (first_k_dense_replace 3), layers 3-60 MoE (moe_layer_freq 1)',
      ),
      router_bias: fact(
        true,
        'noaux_tc routing keeps a learned per-expert e_score_correction_bias in each MoE gate',
      ),
    },
  },
  'deepseekmoe-16b': {
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'layer 0 dense (first_k_dense_replace 1), layers 1-27 MoE (moe_layer_freq 1)',
      ),
    },
  },
  'mistral-7b': {
    attention_layer_pattern: slidingEveryLayer('sliding_window 4096 applies to every layer'),
  },
  'gemma-2b': {
    norm: gemmaNorm,
    attention_layer_pattern: fullEveryLayer('MQA (1 KV head) with full causal attention'),
  },
  'gemma-7b': { norm: gemmaNorm },
  'gemma-2-2b': { norm: gemmaNorm, attention_layer_pattern: gemma2Pattern },
  'gemma-2-9b': { norm: gemmaNorm, attention_layer_pattern: gemma2Pattern },
  'gemma-2-27b': { norm: gemmaNorm, attention_layer_pattern: gemma2Pattern },
  'gemma-3-1b': {
    norm: gemmaNorm,
    positions: gemma3Rope,
    attention_layer_pattern: fact(
      gemma3Pattern.value,
      'five local layers (sliding 512) then one global: global layers 5, 11, 17, 23',
    ),
  },
  'gemma-3-4b': { norm: gemmaNorm, positions: gemma3Rope, attention_layer_pattern: gemma3Pattern },
  'gemma-3-12b': { norm: gemmaNorm, positions: gemma3Rope, attention_layer_pattern: gemma3Pattern },
  'gemma-3-27b': { norm: gemmaNorm, positions: gemma3Rope, attention_layer_pattern: gemma3Pattern },
  'phi-3-mini': {
    attention_layer_pattern: slidingEveryLayer(
      'sliding_window 2047 in the config applies to every layer',
    ),
  },
  'phi-3-medium': {
    attention_layer_pattern: slidingEveryLayer(
      'sliding_window 2047 in the config applies to every layer',
    ),
  },
  'chatglm3-6b': {
    positions: fact(
      { kind: 'rope', rotary_fraction: 0.5 } as const,
      'rotary on half of each head dim (interleaved)',
    ),
  },
  'glm-4-9b': {
    positions: fact({ kind: 'rope', rotary_fraction: 0.5 } as const, 'partial rotary factor 0.5'),
  },
  'falcon-7b': {
    block_layout: fact(
      { kind: 'parallel', norms: 1 } as const,
      'parallel attention + MLP fed by ONE shared input_layernorm (not new_decoder_architecture)',
    ),
    attention_layer_pattern: fullEveryLayer('MQA (1 KV head) with full causal attention'),
  },
  'falcon-40b': {
    block_layout: fact(
      { kind: 'parallel', norms: 2 } as const,
      'new_decoder_architecture: ln_attn and ln_mlp, two LayerNorms per parallel block',
    ),
    attention_layer_pattern: fullEveryLayer('GQA (8 KV groups) with full causal attention'),
  },
  'falcon-180b': {
    block_layout: fact(
      { kind: 'parallel', norms: 2 } as const,
      'same block as Falcon-40B: ln_attn and ln_mlp',
    ),
    attention_layer_pattern: fullEveryLayer('GQA (8 KV groups) with full causal attention'),
  },
  'gpt3-175b': {
    attention_layer_pattern: fullEveryLayer(
      'dense attention on every layer, as the MLPerf/MaxText reproduction; the paper does not give the banded layers a window',
    ),
  },
  'opt-175b': {
    positions: fact(
      { kind: 'learned', rows: 2050 } as const,
      'OPTLearnedPositionalEmbedding has max_position_embeddings + 2 rows (offset 2)',
    ),
  },
  'bloom-176b': {
    embedding_norm: fact(true, 'word_embeddings_layernorm (weight + bias) after the embeddings'),
  },
  'gpt-neox-20b': {
    block_layout: fact(
      { kind: 'parallel', norms: 2 } as const,
      'use_parallel_residual with input_layernorm and post_attention_layernorm',
    ),
    positions: fact(
      { kind: 'rope', rotary_fraction: 0.25 } as const,
      'rotary_pct 0.25: 24 of 96 dims',
    ),
  },
  'starcoder2-3b': {
    tied_embeddings: fact(
      true,
      'HF config omits tie_word_embeddings, so transformers ties (PretrainedConfig default); 3.03B fits tied',
    ),
    attention_layer_pattern: slidingEveryLayer('sliding_window 4096 applies to every layer'),
  },
  'starcoder2-7b': {
    tied_embeddings: fact(
      true,
      'HF config omits tie_word_embeddings, so transformers ties (PretrainedConfig default)',
    ),
    attention_layer_pattern: slidingEveryLayer('sliding_window 4096 applies to every layer'),
  },
  'starcoder2-15b': {
    tied_embeddings: fact(
      true,
      'HF config omits tie_word_embeddings, so transformers ties (PretrainedConfig default); NeMo unties',
    ),
    attention_layer_pattern: slidingEveryLayer('sliding_window 4096 applies to every layer'),
  },
  'command-r': {
    block_layout: fact(
      { kind: 'parallel', norms: 1 } as const,
      'Cohere decoder: one input_layernorm feeds attention and MLP in parallel',
    ),
  },
  'command-r-plus': {
    block_layout: fact(
      { kind: 'parallel', norms: 1 } as const,
      'Cohere decoder: one input_layernorm feeds attention and MLP in parallel',
    ),
    qk_norm_shape: fact(
      'per_head',
      'CohereLayerNorm over (heads, head_dim) for q and (kv_heads, head_dim) for k: a weight per head',
    ),
  },
  dbrx: {
    attention_layer_pattern: fullEveryLayer('full causal attention; clip_qkv adds no parameters'),
  },
  'grok-1': {
    attention_layer_pattern: fullEveryLayer(
      'full causal attention; the logit soft-cap adds no parameters',
    ),
  },
  'kimi-k2': {
    positions: mlaRope,
    attention_layer_pattern: fullEveryLayer('MLA with full causal attention on every layer'),
    moe: {
      interleave_moe_layer_step: everyLayerAfterDense(
        'layer 0 dense (first_k_dense_replace 1), layers 1-60 MoE',
      ),
      router_bias: fact(true, 'DeepSeek-V3 routing (noaux_tc): e_score_correction_bias per gate'),
    },
  },
  'minimax-text-01': {
    num_key_value_heads: fact(
      8,
      'softmax layers use GQA with 8 KV heads; the 456.1B total only fits 8',
    ),
    tied_embeddings: fact(
      false,
      'MiniMax config default tie_word_embeddings false; 456.1B fits untied',
    ),
    block_layout: fact(
      { kind: 'post' } as const,
      'post-norm with DeepNorm-style alpha/beta residual scaling: two RMSNorms per layer',
    ),
    positions: fact(
      { kind: 'rope', rotary_fraction: 0.5 } as const,
      'rotary_dim 64 of head_dim 128 on the softmax layers',
    ),
    attention_layer_pattern: fact(
      ['linear', 'linear', 'linear', 'linear', 'linear', 'linear', 'linear', 'full'] as const,
      'seven lightning (linear) attention layers, then one softmax layer: 10 softmax layers of 80',
    ),
    linear_attention: fact(
      { output_gate: true, block_size: 256 } as const,
      'lightning attention: qkv_proj, sigmoid output_gate, RMSNorm(heads*head_dim), out_proj; block 256',
    ),
  },
};
