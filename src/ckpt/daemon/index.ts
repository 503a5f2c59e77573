export { CheckpointDaemon } from './checkpoint-daemon.ts';
export type {
  CheckpointDaemonOptions,
  DaemonError,
  JobStatus,
  Registration,
  ShardSourceInfo,
} from './checkpoint-daemon.ts';
export { buildLocalApi, createLocalApp, startLocalApi } from './local-api.ts';
export { createPacer } from './pacer.ts';
export type { PacerOptions } from './pacer.ts';
export { PeerClient } from './peer-client.ts';
export type { PeerAddress } from './peer-client.ts';
export type { DaemonLog } from './daemon-log.ts';
