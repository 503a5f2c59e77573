import type { TrainingRecipeId } from '../zoo/index.ts';
import type { Precision, SoftwareProfileId } from './types.ts';

/**
 * What a software stack overlaps and which kernels it runs. The planner's predictions depend on
 * it as much as on the hardware, so it is an explicit input rather than a hidden constant.
 */
export interface SoftwareProfile {
  readonly id: SoftwareProfileId;
  /** Fused (flash) attention: no s x s scores in memory; causal blocks skipped. */
  readonly flashAttention: boolean;
  /** Dropout on attention probabilities and residual branches (masks stored, extra traffic). */
  readonly dropout: boolean;
  /** Gradient reduction overlapped with the backward pass (bucketed), parameter gathers with the forward. */
  readonly overlapDataParallel: boolean;
  /** Fraction of collective link bandwidth NCCL-style collectives achieve (protocol, chunking, sync). */
  readonly linkEfficiency: number;
  /** Each tensor-parallel rank sends only its 1/t slice across a pipeline boundary. */
  readonly scatterGatherP2p: boolean;
  /** The training recipe (bytes per parameter) for bf16; fp8 always uses `fp8-mixed`. */
  readonly bf16Recipe: TrainingRecipeId;
}

/** The software profiles, by id. */
export const softwareProfiles: Readonly<Record<SoftwareProfileId, SoftwareProfile>> = {
  modern: {
    id: 'modern',
    flashAttention: true,
    dropout: false,
    overlapDataParallel: true,
    linkEfficiency: 0.8,
    scatterGatherP2p: true,
    bf16Recipe: 'bf16-mixed',
  },
  'megatron-2021': {
    id: 'megatron-2021',
    flashAttention: false,
    dropout: true,
    overlapDataParallel: false,
    linkEfficiency: 0.8,
    scatterGatherP2p: true,
    bf16Recipe: 'bf16-mixed-fp32-grads',
  },
};

/** The recipe a precision uses under a profile. */
export function recipeFor(profile: SoftwareProfile, precision: Precision): TrainingRecipeId {
  return precision === 'fp8' ? 'fp8-mixed' : profile.bf16Recipe;
}
