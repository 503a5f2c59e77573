import type { Cluster } from '../hardware/index.ts';
import type { ModelArchitecture } from '../zoo/index.ts';

/** Activation recomputation: none, the attention core only (Korthikanti et al.), or every layer. */
export type Recompute = 'none' | 'selective' | 'full';

/** CPU offload: nothing, the optimizer state (fp32 master + moments), or also the weights. */
export type Offload = 'none' | 'optimizer' | 'all';

/** The number format of the matrix products: bf16, or fp8 where the accelerator has it. */
export type Precision = 'bf16' | 'fp8';

/** Fixed dimensions; every field optional, a pinned field fixes that dimension of the search. */
export interface PlanPins {
  readonly tp?: number;
  readonly pp?: number;
  readonly vpp?: number;
  readonly cp?: number;
  readonly ep?: number;
  readonly sp?: boolean;
  readonly microBatch?: number;
  readonly zero?: 0 | 1 | 2 | 3;
  readonly recompute?: Recompute;
  readonly offload?: Offload;
}

/**
 * The software stack the run uses, which decides what overlaps and which kernels run. `modern`
 * (the default) is Megatron-Core/TorchTitan-style: flash attention, gradient reduction overlapped
 * with the backward pass, no dropout. The `megatron-2021` profile is the stack of Narayanan et al.
 * (2021) and Korthikanti et al. (2022): unfused softmax attention (scores written to memory),
 * dropout, fp32 gradient all-reduce after the backward pass, nothing overlapped.
 */
export type SoftwareProfileId = 'modern' | 'megatron-2021';

/** What to plan. */
export interface PlanRequest {
  readonly model: ModelArchitecture;
  /** From `defaultCluster({accelerator, gpus})` or `loadClusterFile`. */
  readonly cluster: Cluster;
  /** Tokens per sequence; default 4096, capped by the model's maximum positions. */
  readonly seqLen?: number;
  /** Sequences per optimizer step; default `defaultGlobalBatch(gpus)`. */
  readonly globalBatch?: number;
  readonly pins?: PlanPins;
  /** How many plans to return (default 10). */
  readonly top?: number;
  /** Default bf16; fp8 needs an accelerator with an fp8 path. */
  readonly precision?: Precision;
  /** Default `modern`. */
  readonly software?: SoftwareProfileId;
  /** Skip the scaling-efficiency reference search (the field is then NaN); for callers that do not need it. */
  readonly skipScaling?: boolean;
}

/** One evaluated configuration. */
export interface Plan {
  readonly tp: number;
  readonly pp: number;
  readonly vpp: number;
  readonly dp: number;
  readonly cp: number;
  readonly ep: number;
  readonly sp: boolean;
  readonly zero: 0 | 1 | 2 | 3;
  readonly microBatch: number;
  readonly gradAccum: number;
  readonly recompute: Recompute;
  readonly offload: Offload;
  /** Peak per GPU, GiB (the worst pipeline stage). */
  readonly memoryGiB: number;
  readonly stepTimeS: number;
  readonly tokensPerS: number;
  /** Model FLOPs (forward + backward, attention included, recomputation not) per second per GPU, TFLOPS. */
  readonly tflopsPerGpu: number;
  /** tflopsPerGpu over the accelerator's dense bf16 peak. */
  readonly mfu: number;
  /** Throughput per GPU over that of the best plan on one server (or the fewest servers that hold the model). */
  readonly scalingEfficiency: number;
  /** Bytes per GPU on the worst stage: weights, grads, optimizer, activations, buffers, runtime, reserve. */
  readonly memory: Readonly<Record<string, number>>;
  /** Seconds per step: compute, tp, cp, ep, pp, bubble, dp, optimizer, offload. They sum to stepTimeS. */
  readonly time: Readonly<Record<string, number>>;
  /** Bytes of model + optimizer state this GPU holds (what a checkpoint of it writes). */
  readonly checkpointBytesPerGpu: number;
  /** Each pipeline stage's accelerator and layer count (uneven splits, heterogeneous clusters). */
  readonly stages?: readonly { readonly accelerator: string; readonly layers: number }[];
}

/** The answer of `planJob`. */
export interface PlanResult {
  readonly model: string;
  readonly accelerator: string;
  readonly gpus: number;
  readonly seqLen: number;
  readonly globalBatch: number;
  /** Best first (highest tokens/s among those that fit). */
  readonly plans: readonly Plan[];
  /** Why `plans` is empty; null otherwise. */
  readonly reason: string | null;
}
