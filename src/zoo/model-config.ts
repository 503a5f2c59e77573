import { z } from 'zod';

/**
 * The model file format: the keys of a models.json entry (Hugging Face-style names) plus the
 * optional structured keys that say exactly what the free-text fields describe. The same schema
 * validates the shipped models.json entries merged with their overlay (data/structure.ts).
 */

const positiveInt = z
  .int({ error: 'expected a positive integer' })
  .positive({ error: 'expected a positive integer' });
const nonNegativeInt = z
  .int({ error: 'expected a non-negative integer' })
  .nonnegative({ error: 'expected a non-negative integer' });
const bool = z.boolean({ error: 'expected true or false' });
const text = z.string({ error: 'expected a string' });

/** `norm`: how each norm is parameterised (overrides `norm_type`). */
export const normSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('rmsnorm'), unit_offset: bool.optional() }),
  z.strictObject({ kind: z.literal('layernorm'), bias: bool }),
]);

/** `block_layout`: where the norms sit and how many per layer (overrides `norm_layout`). */
export const blockLayoutSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('pre') }),
  z.strictObject({ kind: z.literal('sandwich') }),
  z.strictObject({
    kind: z.literal('parallel'),
    norms: z.union([z.literal(1), z.literal(2)], { error: 'expected 1 or 2' }),
  }),
  z.strictObject({ kind: z.literal('post') }),
]);

/** `positions`: the positional encoding (overrides `position_encoding`). */
export const positionsSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('rope'),
    rotary_fraction: z
      .number({ error: 'expected a number in (0, 1]' })
      .gt(0, { error: 'expected a number in (0, 1]' })
      .lte(1, { error: 'expected a number in (0, 1]' })
      .optional(),
    no_rope_layer_interval: positiveInt.nullable().optional(),
  }),
  z.strictObject({ kind: z.literal('alibi') }),
  /** `rows` defaults to max_position_embeddings (OPT has 2 extra rows: offset 2). */
  z.strictObject({ kind: z.literal('learned'), rows: positiveInt.optional() }),
  z.strictObject({ kind: z.literal('none') }),
]);

/** One entry of `attention_layer_pattern`, repeated cyclically over the layers from layer 0. */
export const layerAttentionKinds = ['full', 'sliding', 'chunked', 'linear'] as const;
export type LayerAttentionKind = (typeof layerAttentionKinds)[number];

const moeSchema = z.strictObject({
  num_experts: positiveInt,
  experts_per_token: positiveInt,
  num_shared_experts: nonNegativeInt.optional(),
  moe_intermediate_size: positiveInt,
  /** Combined width of all shared experts (DeepSeek: n_shared_experts x moe_intermediate_size). */
  shared_expert_intermediate_size: positiveInt.nullable().optional(),
  first_k_dense_replace: nonNegativeInt.optional(),
  /** Free text; `interleave_moe_layer_step` says it exactly. */
  moe_layer_pattern: text.optional(),
  /** Free text describing the routing function. */
  router: text.optional(),
  /** Layer i >= first_k_dense_replace is MoE when (i + 1) % step == 0 (Hugging Face Llama 4). */
  interleave_moe_layer_step: positiveInt.optional(),
  shared_expert_gate: bool.optional(),
  router_bias: bool.optional(),
});

const mlaSchema = z.strictObject({
  q_lora_rank: positiveInt.nullable(),
  kv_lora_rank: positiveInt,
  qk_nope_head_dim: positiveInt,
  qk_rope_head_dim: positiveInt,
  v_head_dim: positiveInt,
});

/** The structured keys, shared by model files and the shipped overlay. */
export const structuredKeysShape = {
  norm: normSchema.optional(),
  block_layout: blockLayoutSchema.optional(),
  positions: positionsSchema.optional(),
  attention_layer_pattern: z
    .array(z.enum(layerAttentionKinds), { error: 'expected an array of layer kinds' })
    .min(1, { error: 'expected at least one layer kind' })
    .readonly()
    .optional(),
  attention_chunk_size: positiveInt.optional(),
  linear_attention: z
    .strictObject({ output_gate: bool, block_size: positiveInt.optional() })
    .optional(),
  qk_norm_shape: z.enum(['head_dim', 'per_head']).optional(),
  embedding_norm: bool.optional(),
  final_norm: bool.optional(),
} as const;

const configObject = z.strictObject({
  id: text.min(1, { error: 'expected a non-empty string' }).optional(),
  family: text.nullable().optional(),
  name: text.nullable().optional(),
  hf_id: text.nullable().optional(),
  total_params_reported_b: z
    .number({ error: 'expected a number' })
    .positive()
    .nullable()
    .optional(),
  active_params_reported_b: z
    .number({ error: 'expected a number' })
    .positive()
    .nullable()
    .optional(),
  hidden_size: positiveInt,
  num_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullable().optional(),
  head_dim: positiveInt.nullable().optional(),
  intermediate_size: positiveInt.nullable().optional(),
  mlp_activation: text.optional(),
  gated_mlp: bool.optional(),
  vocab_size: positiveInt,
  max_position_embeddings: positiveInt.nullable().optional(),
  tied_embeddings: bool.nullable().optional(),
  norm_type: text.optional(),
  norm_layout: text.optional(),
  position_encoding: text.optional(),
  rope_theta: z.number({ error: 'expected a number' }).positive().nullable().optional(),
  rope_scaling: z
    .union([text, z.record(z.string(), z.unknown())])
    .nullable()
    .optional(),
  attention_bias: z.enum(['none', 'qkv', 'all']).optional(),
  mlp_bias: bool.optional(),
  qk_norm: z.enum(['none', 'l2', 'rmsnorm', 'layernorm']).optional(),
  sliding_window: positiveInt.nullable().optional(),
  attention_pattern: text.optional(),
  moe: moeSchema.nullable().optional(),
  mla: mlaSchema.nullable().optional(),
  notes: text.nullable().optional(),
  unconfirmed: z.array(text).optional(),
  source: text.nullable().optional(),
  ...structuredKeysShape,
});

/** A model as a file gives it (or a models.json entry merged with its overlay). */
export const modelConfigSchema = configObject.superRefine((c, ctx) => {
  const kv = c.num_key_value_heads;
  if (kv !== undefined && kv !== null && c.num_attention_heads % kv !== 0)
    ctx.addIssue({
      code: 'custom',
      path: ['num_key_value_heads'],
      message: `expected a divisor of num_attention_heads (${c.num_attention_heads})`,
    });
  if (c.moe !== undefined && c.moe !== null && c.moe.experts_per_token > c.moe.num_experts)
    ctx.addIssue({
      code: 'custom',
      path: ['moe', 'experts_per_token'],
      message: `expected at most num_experts (${c.moe.num_experts})`,
    });
  if (
    c.moe !== undefined &&
    c.moe !== null &&
    (c.moe.num_shared_experts ?? 0) > 0 &&
    (c.moe.shared_expert_intermediate_size ?? null) === null
  )
    ctx.addIssue({
      code: 'custom',
      path: ['moe', 'shared_expert_intermediate_size'],
      message: 'expected a positive integer when num_shared_experts > 0',
    });
});

export type ModelConfig = z.output<typeof configObject>;

/** The structured keys alone, as the overlay writes them. */
export type StructuredKeys = {
  readonly [K in keyof typeof structuredKeysShape]?: z.output<(typeof structuredKeysShape)[K]>;
};

/** The keys a model file may hold, for "did you mean" suggestions on unknown keys. */
export const modelConfigKeys: readonly string[] = Object.keys(configObject.shape);
export const moeConfigKeys: readonly string[] = Object.keys(moeSchema.shape);
export const mlaConfigKeys: readonly string[] = Object.keys(mlaSchema.shape);
