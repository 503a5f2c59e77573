import { createTopology, type Cluster, type Topology } from '../hardware/index.ts';
import {
  activationBytesPerLayer,
  getTrainingRecipe,
  type ActivationOptions,
  type TrainingRecipe,
} from '../zoo/index.ts';
import { CommCache } from './comm.ts';
import { stageDevices, type StageDevice } from './layout.ts';
import { modelProfile, type ModelProfile } from './model-profile.ts';
import { recipeFor, softwareProfiles, type SoftwareProfile } from './software.ts';
import type { Precision, SoftwareProfileId } from './types.ts';

/** Everything a plan evaluation reads, resolved once per request. */
export interface PlanContext {
  readonly profile: ModelProfile;
  readonly cluster: Cluster;
  readonly topology: Topology;
  readonly comm: CommCache;
  readonly software: SoftwareProfile;
  readonly precision: Precision;
  readonly recipe: TrainingRecipe;
  readonly seqLen: number;
  readonly globalBatch: number;
  readonly gpus: number;
  /** Stage devices per pipeline depth (cached); null when an accelerator lacks the precision. */
  stages(pp: number): readonly StageDevice[] | null;
  /** Sum of the devices' dense bf16 peaks, FLOP/s (MFU's denominator). */
  readonly bf16PeakFlops: number;
  /** A value computed once per key for the life of the request. */
  memo<T>(key: string, compute: () => T): T;
  /** Stored activation bytes per layer for one micro-batch (cached per shape). */
  activations(options: ActivationOptions): readonly number[];
}

/** Builds the context of one request. */
export function planContext(options: {
  readonly model: ModelProfile['model'];
  readonly cluster: Cluster;
  readonly seqLen: number;
  readonly globalBatch: number;
  readonly precision: Precision;
  readonly software: SoftwareProfileId;
}): PlanContext {
  const software = softwareProfiles[options.software];
  const topology = createTopology(options.cluster);
  const stageCache = new Map<number, readonly StageDevice[] | null>();
  const activationCache = new Map<string, readonly number[]>();
  const memos = new Map<string, unknown>();
  let bf16PeakFlops = 0;
  for (const run of options.cluster.runs) {
    const peak = run.accelerator.peakTflops.bf16 ?? run.accelerator.peakTflops.fp16 ?? 0;
    bf16PeakFlops += peak * 1e12 * run.count * run.devicesPerServer;
  }
  return {
    profile: modelProfile(options.model, options.seqLen),
    cluster: options.cluster,
    topology,
    comm: new CommCache(topology, software.linkEfficiency),
    software,
    precision: options.precision,
    recipe: getTrainingRecipe(recipeFor(software, options.precision)),
    seqLen: options.seqLen,
    globalBatch: options.globalBatch,
    gpus: options.cluster.deviceCount,
    stages(pp: number) {
      let s = stageCache.get(pp);
      if (s === undefined) {
        s = stageDevices(options.cluster, pp, options.precision);
        stageCache.set(pp, s);
      }
      return s;
    },
    bf16PeakFlops,
    memo<T>(key: string, compute: () => T): T {
      if (memos.has(key)) return memos.get(key) as T;
      const value = compute();
      memos.set(key, value);
      return value;
    },
    activations(a: ActivationOptions) {
      const key = `${a.seqLen}|${a.microBatch}|${a.tp}|${a.sp}|${a.recompute}|${a.dropout}`;
      let v = activationCache.get(key);
      if (v === undefined) {
        v = activationBytesPerLayer(options.model, a);
        activationCache.set(key, v);
      }
      return v;
    },
  };
}
