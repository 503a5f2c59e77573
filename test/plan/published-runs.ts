import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCluster } from '../../src/hardware/index.ts';
import type { PlanRequest } from '../../src/plan/index.ts';
import { getModel, loadModelFile, type ModelArchitecture } from '../../src/zoo/index.ts';

/**
 * Published training runs the planner is validated against. Each row cites its source; the
 * published step time is derived from what the paper reports, with the paper's own formula.
 */

/** A GPT of the Megatron papers: learned positions, LayerNorm, GeLU MLP of 4h, vocab 51,200. */
export interface MegatronRun {
  readonly name: string;
  readonly source: string;
  readonly heads: number;
  readonly hidden: number;
  readonly layers: number;
  readonly tp: number;
  readonly pp: number;
  readonly gpus: number;
  readonly globalBatch: number;
  /** Micro-batch size where the paper states it; null where it does not (the planner chooses). */
  readonly microBatch: number | null;
  /** Achieved TFLOPS per GPU as published (counting recomputation: 4 passes). */
  readonly tflopsPerGpu: number;
}

const table1 =
  'Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM" (arXiv 2104.04473), Table 1: A100-80GB Selene, seq 2048, vocab 51200, interleaved schedule, full recomputation';

/** Table 1 of Narayanan et al. (2021). Micro-batch 1 for the pipelined models, as the paper uses for its large runs. */
export const megatron2021: readonly MegatronRun[] = [
  {
    name: '1.7B',
    heads: 24,
    hidden: 2304,
    layers: 24,
    tp: 1,
    pp: 1,
    gpus: 32,
    globalBatch: 512,
    microBatch: null,
    tflopsPerGpu: 137,
  },
  {
    name: '3.6B',
    heads: 32,
    hidden: 3072,
    layers: 30,
    tp: 2,
    pp: 1,
    gpus: 64,
    globalBatch: 512,
    microBatch: null,
    tflopsPerGpu: 138,
  },
  {
    name: '7.5B',
    heads: 32,
    hidden: 4096,
    layers: 36,
    tp: 4,
    pp: 1,
    gpus: 128,
    globalBatch: 512,
    microBatch: null,
    tflopsPerGpu: 142,
  },
  {
    name: '18.4B',
    heads: 48,
    hidden: 6144,
    layers: 40,
    tp: 8,
    pp: 1,
    gpus: 256,
    globalBatch: 1024,
    microBatch: null,
    tflopsPerGpu: 135,
  },
  {
    name: '39.1B',
    heads: 64,
    hidden: 8192,
    layers: 48,
    tp: 8,
    pp: 2,
    gpus: 512,
    globalBatch: 1536,
    microBatch: 1,
    tflopsPerGpu: 138,
  },
  {
    name: '76.1B',
    heads: 80,
    hidden: 10240,
    layers: 60,
    tp: 8,
    pp: 4,
    gpus: 1024,
    globalBatch: 1792,
    microBatch: 1,
    tflopsPerGpu: 140,
  },
  {
    name: '145.6B',
    heads: 96,
    hidden: 12288,
    layers: 80,
    tp: 8,
    pp: 8,
    gpus: 1536,
    globalBatch: 2304,
    microBatch: 1,
    tflopsPerGpu: 148,
  },
  {
    name: '310.1B',
    heads: 128,
    hidden: 16384,
    layers: 96,
    tp: 8,
    pp: 16,
    gpus: 1920,
    globalBatch: 2160,
    microBatch: 1,
    tflopsPerGpu: 155,
  },
  {
    name: '529.6B',
    heads: 128,
    hidden: 20480,
    layers: 105,
    tp: 8,
    pp: 35,
    gpus: 2520,
    globalBatch: 2520,
    microBatch: 1,
    tflopsPerGpu: 163,
  },
  {
    name: '1008B',
    heads: 160,
    hidden: 25600,
    layers: 128,
    tp: 8,
    pp: 64,
    gpus: 3072,
    globalBatch: 3072,
    microBatch: 1,
    tflopsPerGpu: 163,
  },
].map((r) => ({ ...r, source: table1 }));

/** The paper's FLOPs per iteration with full recomputation: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)). */
export function megatronFlopsWithRecompute(run: MegatronRun, seqLen = 2048, vocab = 51200): number {
  const { globalBatch: b, layers: l, hidden: h } = run;
  return 96 * b * seqLen * l * h * h * (1 + seqLen / (6 * h) + vocab / (16 * l * h));
}

/** The published step time: the formula's FLOPs over the achieved FLOP/s of all GPUs. */
export function publishedStepSeconds(run: MegatronRun): number {
  return megatronFlopsWithRecompute(run) / (run.tflopsPerGpu * 1e12 * run.gpus);
}

/** The model file (design.md's model-file contract) of a Megatron GPT. */
export function megatronModelFile(
  run: Pick<MegatronRun, 'name' | 'heads' | 'hidden' | 'layers'>,
): Record<string, unknown> {
  return {
    id: `megatron-gpt-${run.name.toLowerCase()}`,
    name: `Megatron GPT ${run.name}`,
    hidden_size: run.hidden,
    num_layers: run.layers,
    num_attention_heads: run.heads,
    num_key_value_heads: run.heads,
    head_dim: run.hidden / run.heads,
    intermediate_size: 4 * run.hidden,
    mlp_activation: 'gelu',
    gated_mlp: false,
    vocab_size: 51200,
    max_position_embeddings: 2048,
    tied_embeddings: true,
    norm_type: 'layernorm',
    position_encoding: 'learned',
    attention_bias: 'all',
    mlp_bias: true,
  };
}

/** A run published as model FLOPs utilization only. */
export interface MfuRun {
  readonly name: string;
  readonly source: string;
  readonly gpus: number;
  readonly tp: number;
  readonly pp: number;
  readonly cp: number;
  readonly seqLen: number;
  readonly globalBatch: number;
  /** As published; null where the source does not say (the planner then chooses). */
  readonly recompute: 'none' | 'selective' | 'full' | null;
  /** Published model FLOPs utilization (fraction of the dense bf16 peak). */
  readonly mfu: number;
}

const korthikanti =
  'Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models" (arXiv 2205.05198), Table 3 (configurations, data-parallel size 1) and the MFU table reproduced in the NVIDIA/Megatron-LM README: A100-80GB, seq 2048, selective recomputation + sequence parallelism';

/** Korthikanti et al. (2022): GPT models with selective recomputation and sequence parallelism. */
export type KorthikantiRun = MfuRun & Pick<MegatronRun, 'heads' | 'hidden' | 'layers'>;
export const korthikanti2022: readonly KorthikantiRun[] = (
  [
    {
      name: '22B',
      heads: 64,
      hidden: 6144,
      layers: 48,
      tp: 8,
      pp: 1,
      cp: 1,
      gpus: 8,
      globalBatch: 4,
      seqLen: 2048,
      recompute: 'selective',
      mfu: 0.415,
    },
    {
      name: '175B',
      heads: 96,
      hidden: 12288,
      layers: 96,
      tp: 8,
      pp: 8,
      cp: 1,
      gpus: 64,
      globalBatch: 64,
      seqLen: 2048,
      recompute: 'selective',
      mfu: 0.514,
    },
    {
      name: '530B',
      heads: 128,
      hidden: 20480,
      layers: 105,
      tp: 8,
      pp: 35,
      cp: 1,
      gpus: 280,
      globalBatch: 280,
      seqLen: 2048,
      recompute: 'selective',
      mfu: 0.56,
    },
    {
      name: '1T',
      heads: 160,
      hidden: 25600,
      layers: 128,
      tp: 8,
      pp: 64,
      cp: 1,
      gpus: 512,
      globalBatch: 512,
      seqLen: 2048,
      recompute: 'selective',
      mfu: 0.563,
    },
  ] as const
).map((r) => ({ ...r, source: korthikanti }));

const llama3 =
  'Llama Team 2024, "The Llama 3 Herd of Models" (arXiv 2407.21783), Table 4: Llama 3 405B on H100-80GB (8 per server, NVLink; RoCE 400 Gb/s per GPU), BF16 MFU';

/**
 * Llama 3 405B pre-training stages (Table 4). The 131k row prints DP 4, but 8 x 16 x 16 x 4 is
 * 8,192 GPUs, not the 16,384 it lists; DP 8 is what 16,384 GPUs and its 16M tokens per batch
 * (8 x 16 sequences x 131,072) agree on, so it is used here.
 */
export const llama3Runs: readonly MfuRun[] = (
  [
    {
      name: '405B 8k on 8,192',
      gpus: 8192,
      tp: 8,
      pp: 16,
      cp: 1,
      seqLen: 8192,
      globalBatch: 64 * 32,
      recompute: null,
      mfu: 0.43,
    },
    {
      name: '405B 8k on 16,384',
      gpus: 16384,
      tp: 8,
      pp: 16,
      cp: 1,
      seqLen: 8192,
      globalBatch: 128 * 16,
      recompute: null,
      mfu: 0.41,
    },
    {
      name: '405B 131k on 16,384',
      gpus: 16384,
      tp: 8,
      pp: 16,
      cp: 16,
      seqLen: 131072,
      globalBatch: 8 * 16,
      recompute: null,
      mfu: 0.38,
    },
  ] as const
).map((r) => ({ ...r, source: llama3 }));

/** A Megatron GPT as the planner sees it: its model file written into `dir`, then loaded. */
export function megatronModel(
  run: Pick<MegatronRun, 'name' | 'heads' | 'hidden' | 'layers'>,
  dir: string,
): ModelArchitecture {
  const file = join(dir, `gpt-${run.name}.json`);
  writeFileSync(file, JSON.stringify(megatronModelFile(run)));
  return loadModelFile(file);
}

/** Narayanan 2021 as run: every dimension pinned, full recomputation, no ZeRO. */
export function megatronRequest(run: MegatronRun, model: ModelArchitecture): PlanRequest {
  return {
    model,
    cluster: defaultCluster({ accelerator: 'a100-80g', gpus: run.gpus }),
    seqLen: 2048,
    globalBatch: run.globalBatch,
    software: 'megatron-2021',
    skipScaling: true,
    top: 1,
    pins: {
      tp: run.tp,
      pp: run.pp,
      cp: 1,
      ep: 1,
      sp: false,
      zero: 0,
      recompute: 'full',
      offload: 'none',
      ...(run.microBatch === null ? {} : { microBatch: run.microBatch }),
    },
  };
}

/** Korthikanti 2022 as run: sequence parallelism, selective recomputation unless stated. */
export function korthikantiRequest(run: KorthikantiRun, model: ModelArchitecture): PlanRequest {
  return {
    model,
    cluster: defaultCluster({ accelerator: 'a100-80g', gpus: run.gpus }),
    seqLen: run.seqLen,
    globalBatch: run.globalBatch,
    software: 'megatron-2021',
    skipScaling: true,
    top: 1,
    pins: {
      tp: run.tp,
      pp: run.pp,
      cp: 1,
      ep: 1,
      sp: true,
      zero: 0,
      recompute: run.recompute ?? 'selective',
      offload: 'none',
      microBatch: 1,
    },
  };
}

/** Llama 3 405B as run on H100s: the paper's tp/pp/cp, ZeRO-1, recomputation where stated. */
export function llama3Request(run: MfuRun): PlanRequest {
  return {
    model: getModel('llama-3.1-405b'),
    cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: run.gpus }),
    seqLen: run.seqLen,
    globalBatch: run.globalBatch,
    skipScaling: true,
    top: 1,
    pins: {
      tp: run.tp,
      pp: run.pp,
      cp: run.cp,
      ep: 1,
      sp: true,
      zero: 1,
      ...(run.recompute === null ? {} : { recompute: run.recompute }),
      offload: 'none',
      microBatch: 1,
    },
  };
}
