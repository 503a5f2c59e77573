export { createRandom, type Random } from './prng.ts';
export {
  detectionKinds,
  failureModelFromFile,
  failureModelSchema,
  failureModelToFile,
  failureScopes,
  loadFailureModel,
  parseFailureModel,
  type DetectionKind,
  type DetectionLatencies,
  type FailureClass,
  type FailureModel,
  type FailureModelFile,
  type FailureScope,
} from './failure-model.ts';
export { defaultFailureModel, llama3Calibration } from './default-failure-model.ts';
export { replicaPeer, switchCount, type SimJob } from './job.ts';
export { jobFromCluster } from './job-from-cluster.ts';
export {
  defaultPolicySpec,
  jobFailureRatePerHour,
  loadPolicyFile,
  parsePolicies,
  policyDefaults,
  policyFileSchema,
  resolvePolicy,
  unitsOf,
  type PolicySpec,
  type SimPolicy,
} from './policy.ts';
export {
  simulateTrial,
  type InjectedFailure,
  type LostSeconds,
  type RestoreLevel,
  type TraceEntry,
  type TrialOptions,
  type TrialResult,
} from './trial.ts';
export {
  noFaultDays,
  quantile,
  runMonteCarlo,
  summarizeTrials,
  wilson95,
  type MonteCarloOptions,
  type PolicyResult,
  type Spread,
} from './monte-carlo.ts';
export { jobFromPlan, type JobSource } from './from-plan.ts';
export { progressPlotSvg, progressPlotText } from './plot.ts';
export { simulationReport, type ReportHeader } from './report.ts';
