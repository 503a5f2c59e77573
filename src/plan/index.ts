export type {
  Offload,
  Plan,
  PlanPins,
  PlanRequest,
  PlanResult,
  Precision,
  Recompute,
  SoftwareProfileId,
} from './types.ts';
export { defaultGlobalBatch, defaultSeqLen, planJob } from './plan-job.ts';
export { explainPlans, type Alternative, type Explanation } from './explain.ts';
export { softwareProfiles, type SoftwareProfile } from './software.ts';
export { kernelFacts, type KernelFacts } from './kernels.ts';
