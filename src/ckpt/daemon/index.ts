export { CheckpointDaemon, daemonFailureKinds } from './checkpoint-daemon.ts';
export type {
  CheckpointDaemonOptions,
  DaemonCounters,
  DaemonError,
  DaemonFailureKind,
  JobStatus,
  Registration,
  ShardSourceInfo,
} from './checkpoint-daemon.ts';
export { buildLocalApi, createLocalApp, startLocalApi } from './local-api.ts';
export { createPacer } from './pacer.ts';
export type { PacerOptions } from './pacer.ts';
export { PeerClient } from './peer-client.ts';
export type { PeerAddress, PeerClientOptions, PeerCredential } from './peer-client.ts';
export {
  newMasterKey,
  pairKey,
  peerAccessFileSchema,
  peerAccessFor,
  peerAccessSchema,
} from './peer-auth.ts';
export type { PeerAccess, PeerGrant, PlacedNode } from './peer-auth.ts';
export { readPeerTls } from './peer-tls.ts';
export type { PeerTls, PeerTlsFiles } from './peer-tls.ts';
export type { DaemonLog } from './daemon-log.ts';
