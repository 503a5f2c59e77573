// The control plane's durable state: the StateStore seam and its implementations.
export { JobPatchSchema, NodeJoinSchema, NodePatchSchema } from './patches.ts';
export { hashSecret, newSecret, secretMatches } from './secrets.ts';
export { openSqliteStore, SqliteStateStore } from './sqlite/sqlite-state-store.ts';
export type { SqliteSettings, SqliteStoreOptions } from './sqlite/sqlite-state-store.ts';
export { apiRoles } from './state-store.ts';
export type {
  ApiRole,
  ApiTokenInfo,
  CheckpointEntry,
  EventFilter,
  EventListener,
  JobPatch,
  NodeJoin,
  NodeJoinResult,
  NodePatch,
  ProgressFilter,
  StateStore,
} from './state-store.ts';
