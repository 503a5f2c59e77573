import { CubeError } from '../core/index.ts';
import type { ModelArchitecture } from './model.ts';
import { totalParams } from './params.ts';

/**
 * Bytes of weights, gradients and optimizer state per parameter for a training recipe, and their
 * totals for a model, optionally sharded by ZeRO over data-parallel ranks.
 */

/** Bytes per parameter of each kind of state a recipe keeps. */
export interface TrainingRecipe {
  readonly id: string;
  readonly description: string;
  /** The weights the forward and backward passes read. */
  readonly weightBytes: number;
  readonly gradientBytes: number;
  /** An fp32 master copy of the weights (0 when the weights themselves are fp32). */
  readonly masterWeightBytes: number;
  /** Adam's first and second moments together. */
  readonly optimizerStateBytes: number;
}

/** The recipes Cube knows; their per-parameter sums are the usual 16 / 18 / 17 bytes. */
export const trainingRecipes = {
  'bf16-mixed': {
    id: 'bf16-mixed',
    description: 'bf16 weights and grads, fp32 master + Adam m, v: 2 + 2 + 4 + 8 = 16 B/param',
    weightBytes: 2,
    gradientBytes: 2,
    masterWeightBytes: 4,
    optimizerStateBytes: 8,
  },
  'bf16-mixed-fp32-grads': {
    id: 'bf16-mixed-fp32-grads',
    description:
      'bf16 weights, fp32 grads (Megatron main_grad), fp32 master + Adam m, v: 2 + 4 + 4 + 8 = 18 B/param',
    weightBytes: 2,
    gradientBytes: 4,
    masterWeightBytes: 4,
    optimizerStateBytes: 8,
  },
  fp32: {
    id: 'fp32',
    description: 'fp32 weights and grads, Adam m, v: 4 + 4 + 8 = 16 B/param',
    weightBytes: 4,
    gradientBytes: 4,
    masterWeightBytes: 0,
    optimizerStateBytes: 8,
  },
  'fp8-mixed': {
    id: 'fp8-mixed',
    description:
      'fp8 GEMMs: bf16 weights + cached fp8 copy, bf16 grads, fp32 master + Adam m, v: 3 + 2 + 4 + 8 = 17 B/param',
    weightBytes: 3,
    gradientBytes: 2,
    masterWeightBytes: 4,
    optimizerStateBytes: 8,
  },
} as const satisfies Record<string, TrainingRecipe>;

export type TrainingRecipeId = keyof typeof trainingRecipes;

/** A recipe by id; unknown ids fail with INVALID_VALUE listing the known ones. */
export function getTrainingRecipe(id: string): TrainingRecipe {
  const recipe = (trainingRecipes as Record<string, TrainingRecipe>)[id];
  if (recipe === undefined)
    throw new CubeError('INVALID_VALUE', `unknown training recipe "${id}"`, {
      where: { field: 'recipe', allowed: Object.keys(trainingRecipes) },
    });
  return recipe;
}

export interface StateBytesOptions {
  readonly recipe: TrainingRecipe | TrainingRecipeId;
  /** ZeRO stage: 1 shards optimizer state (master + moments), 2 also grads, 3 also weights. */
  readonly zeroStage?: 0 | 1 | 2 | 3;
  /** Ranks the ZeRO shards are spread over. */
  readonly dataParallel?: number;
}

export interface StateBytes {
  readonly weightBytes: number;
  readonly gradientBytes: number;
  /** Master weights plus optimizer moments. */
  readonly optimizerBytes: number;
  readonly totalBytes: number;
}

/** Per-rank state bytes for `params` parameters. */
export function trainingStateBytes(params: number, options: StateBytesOptions): StateBytes {
  const r = typeof options.recipe === 'string' ? getTrainingRecipe(options.recipe) : options.recipe;
  const zero = options.zeroStage ?? 0;
  const dp = options.dataParallel ?? 1;
  const shard = (stage: number): number => (zero >= stage ? dp : 1);
  const weightBytes = (params * r.weightBytes) / shard(3);
  const gradientBytes = (params * r.gradientBytes) / shard(2);
  const optimizerBytes = (params * (r.masterWeightBytes + r.optimizerStateBytes)) / shard(1);
  return {
    weightBytes,
    gradientBytes,
    optimizerBytes,
    totalBytes: weightBytes + gradientBytes + optimizerBytes,
  };
}

/** State bytes of a whole model (all parameters, MoE experts included) under a recipe. */
export function modelStateBytes(model: ModelArchitecture, options: StateBytesOptions): StateBytes {
  return trainingStateBytes(totalParams(model), options);
}
