import type { Cluster } from '../hardware/index.ts';
import type { Plan } from '../plan/index.ts';
import { modelStateBytes, type ModelArchitecture } from '../zoo/index.ts';
import { jobFromCluster } from './job-from-cluster.ts';
import type { SimJob } from './job.ts';

/** Where the simulated job's step time and checkpoint size came from. */
export interface JobSource {
  readonly stepTime: 'planner' | '--step-time';
  readonly checkpoint: 'planner' | 'zoo';
}

/**
 * The simulated job for a model on a cluster: the step time from the plan (unless a measured
 * `stepTimeS` overrides it), the checkpoint size from the plan's sharding. Without a plan (none
 * fits, and a step time was given) the checkpoint is the model's weights and optimizer state
 * (bf16 mixed precision, 14 bytes per parameter without gradients) spread evenly over every GPU.
 */
export function jobFromPlan(
  model: ModelArchitecture,
  cluster: Cluster,
  plan: Plan | null,
  options: { stepTimeS?: number } = {},
): { job: SimJob; source: JobSource } {
  const stepTimeS = options.stepTimeS ?? plan?.stepTimeS;
  if (stepTimeS === undefined) throw new Error('jobFromPlan needs a plan or a step time');
  let checkpointBytesPerGpu: number;
  if (plan !== null) checkpointBytesPerGpu = plan.checkpointBytesPerGpu;
  else {
    const state = modelStateBytes(model, { recipe: 'bf16-mixed' });
    checkpointBytesPerGpu = (state.weightBytes + state.optimizerBytes) / cluster.deviceCount;
  }
  return {
    job: jobFromCluster(cluster, { name: model.id, stepTimeS, checkpointBytesPerGpu }),
    source: {
      stepTime: options.stepTimeS === undefined ? 'planner' : '--step-time',
      checkpoint: plan === null ? 'zoo' : 'planner',
    },
  };
}
