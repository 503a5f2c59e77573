// The control plane's domain: Zod schemas at its boundaries and the types inferred from them.
export {
  EventBodySchema,
  EventSchema,
  EventStampSchema,
  eventKinds,
  FaultBlameSchema,
  FaultCauseSchema,
  FaultClassificationSchema,
} from './event.ts';
export type {
  Event,
  EventKind,
  EventOf,
  FaultCause,
  FaultClassification,
  NewEvent,
} from './event.ts';
export { JobIdSchema, NodeIdSchema, newJobId, newNodeId, randomId } from './ids.ts';
export type { Immutable } from './immutable.ts';
export {
  CheckpointKeepSchema,
  CheckpointPolicySchema,
  FaultPolicySchema,
  JobSpecSchema,
  LayoutSchema,
  parseJobSpec,
  RanksSchema,
  RestartPolicySchema,
  StragglerPolicySchema,
  stragglerPolicyOf,
  validateJobSpec,
  worldSizeOf,
} from './job-spec.ts';
export type { JobSpec, JobSpecInput, StragglerPolicy } from './job-spec.ts';
export {
  isTerminalJobState,
  JobSchema,
  JobStateSchema,
  PlacementSchema,
  RankPlacementSchema,
  terminalJobStates,
} from './job.ts';
export type { Job, JobState, Placement, RankPlacement } from './job.ts';
export {
  DeviceHealthSchema,
  DeviceKindSchema,
  DeviceSchema,
  NodeHealthSchema,
  NodeLabelsSchema,
  NodeRoleSchema,
  NodeSchema,
  NodeStateSchema,
  ProbeResultSchema,
} from './node.ts';
export type {
  Device,
  DeviceHealth,
  DeviceKind,
  Node,
  NodeHealth,
  NodeLabels,
  NodeRole,
  NodeState,
} from './node.ts';
export { CheckpointLevelSchema, CheckpointRecordSchema, ProgressSampleSchema } from './progress.ts';
export type { CheckpointLevel, CheckpointRecord, ProgressSample } from './progress.ts';
