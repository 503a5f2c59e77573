/**
 * The checkpoint engine: the shard format (safetensors), records and manifests, level roots
 * and their stores, commit, verification, persistence to L3, retention, restore selection.
 * The contract is docs/checkpoint-format.md.
 */
export { dtypeAlignmentRank, dtypeBytes, dtypes, isDtype } from './dtypes.ts';
export type { Dtype } from './dtypes.ts';
export {
  extraSchema,
  jobIdSchema,
  layoutSchema,
  levels,
  levelSchema,
  manifestSchema,
  manifestShardSchema,
  maxRank,
  maxStep,
  shardRecordSchema,
} from './schemas.ts';
export type { Layout, Level, Manifest, ManifestShard, ShardRecord } from './schemas.ts';
export {
  checkJobId,
  fileKey,
  isSlotFile,
  manifestKey,
  manifestName,
  parseStepDirName,
  recordKey,
  shardFile,
  slotFile,
  stepDirName,
  stepPrefix,
} from './layout.ts';
export { errnoOf, storageError } from './storage-error.ts';
export {
  compareContent,
  createVerifyingStream,
  createXxh3Hasher,
  describeContentCheck,
  xxh3Hex,
} from './xxh3.ts';
export type { ContentCheck, ExpectedContent, Xxh3Hasher } from './xxh3.ts';
export {
  contentMismatchOf,
  fsyncDirectory,
  isHiddenName,
  tempNameFor,
  writeFileAtomic,
} from './atomic-file.ts';
export type { AtomicWriteOptions, ByteSource, WrittenContent } from './atomic-file.ts';
export { checkKey, checkPrefix, readText } from './l3-store.ts';
export type { DurableStore, GetOptions, ListResult, ObjectInfo, PutOptions } from './l3-store.ts';
export { asStore, FsDurableStore } from './fs-store.ts';
export type { LevelRoot } from './fs-store.ts';
export { headerAlignBytes, parseSafetensorsHeader, planSafetensors } from './safetensors-header.ts';
export type {
  SafetensorsHeader,
  SafetensorsPlan,
  TensorEntry,
  TensorInput,
  TensorMap,
} from './safetensors-header.ts';
export {
  putSafetensors,
  safetensorsChunks,
  writeSafetensorsFile,
  writeSafetensorsInPlace,
} from './safetensors-write.ts';
export type { WriteSafetensorsOptions, WrittenSafetensors } from './safetensors-write.ts';
export {
  readSafetensorsFile,
  readSafetensorsHeader,
  readSafetensorsHeaderFrom,
  readTensorFrom,
  tensorValues,
} from './safetensors-read.ts';
export type { LoadedTensor, TensorValues } from './safetensors-read.ts';
export { listJobs, listSteps } from './level-root.ts';
export {
  isCommitted,
  listRecordRanks,
  readManifest,
  readRecord,
  scanJob,
  scanLevelRoot,
  stepStatus,
} from './scan.ts';
export type {
  JsonRead,
  LevelRootScan,
  StepProblem,
  StepShard,
  StepState,
  StepStatus,
} from './scan.ts';
export { putRecord, saveShard } from './save-shard.ts';
export type { SaveShardOptions } from './save-shard.ts';
export { buildManifest, tryCommit } from './commit.ts';
export type { CommitGap, CommitOptions, CommitResult } from './commit.ts';
export { hashFile, hashObject, verifyObject, verifyShard, verifyStep } from './verify.ts';
export type { ObjectCheck, ShardCheck, StepVerification } from './verify.ts';
export { persistStep } from './persist.ts';
export { checkFence, isFenced, fenceKey, fenceName, raiseFence, readFence } from './fence.ts';
export type { Fence } from './fence.ts';
export type { PersistOptions, PersistResult } from './persist.ts';
export { LeaseRegistry } from './leases.ts';
export { collectGarbage, defaultKeep, deleteStep, planRetention } from './retention.ts';
export type {
  DeleteReason,
  GarbageCollection,
  KeepReason,
  RetentionDecision,
  RetentionOptions,
} from './retention.ts';
export { holdingsFromStatuses, planRestore, sourceLevel } from './restore-plan.ts';
export type {
  Holding,
  RankSources,
  RestorePlan,
  RestoreRequest,
  ShardSource,
  StepCandidate,
} from './restore-plan.ts';
export { checkSourceLocally, selectRestore } from './restore-driver.ts';
export type { RestoreAttempt, RestoreSelection, SourceCheck } from './restore-driver.ts';
export { openCheckpointDir, selectJob } from './checkpoint-dir.ts';
export type { CheckpointDir, FoundRoot } from './checkpoint-dir.ts';
export { l3PeriodSteps, persistsToL3 } from './l3-cadence.ts';
export { defaultStallLimits, findStalledLevels } from './stalled-levels.ts';
export type { StalledLevel, StallLimits } from './stalled-levels.ts';
export type { L3Cadence } from './l3-cadence.ts';
