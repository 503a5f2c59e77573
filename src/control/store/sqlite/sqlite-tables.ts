import type { Generated } from 'kysely';

// Column names are snake_case as SQL has them; rows are mapped to the model in sqlite-rows.ts.
// Times are epoch milliseconds; JSON columns hold model values as text.

export interface TokensTable {
  id: string;
  kind: 'api' | 'join';
  name: string;
  /** SHA-256 hex of the token; the token itself is never stored. */
  token_hash: string;
  created_at: number;
  /** `admin` | `user` | `viewer` | `metrics` for API tokens; join tokens keep the default. */
  role: Generated<string>;
  revoked_at: number | null;
}

export interface NodesTable {
  seq: Generated<number>;
  id: string;
  name: string;
  state: string;
  role: string;
  labels_json: string;
  devices_json: string;
  host_memory_bytes: number;
  host: string | null;
  ckpt_peer_port: number | null;
  credential_hash: string;
  joined_at: number;
  last_heartbeat_at: number | null;
  health_json: string | null;
  updated_at: number;
}

export interface JobsTable {
  seq: Generated<number>;
  id: string;
  name: string;
  state: string;
  priority: number;
  spec_json: string;
  attempt: number;
  restarts: number;
  placement_json: string | null;
  placement_explanation_json: string;
  reason: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  ended_at: number | null;
  /** The id of the API token that submitted the job; null for jobs from before roles. */
  owner: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  kind: string;
  job_id: string | null;
  node_id: string | null;
  rank: number | null;
  attempt: number | null;
  data_json: string;
}

export interface ProgressTable {
  id: Generated<number>;
  job_id: string;
  attempt: number;
  rank: number;
  step: number;
  loss: number | null;
  tokens_per_s: number | null;
  at: number;
}

export interface CheckpointsTable {
  job_id: string;
  step: number;
  level: string;
  at: number;
}

/** The store's tables, as Kysely sees them. */
export interface StoreTables {
  tokens: TokensTable;
  nodes: NodesTable;
  jobs: JobsTable;
  events: EventsTable;
  progress: ProgressTable;
  checkpoints: CheckpointsTable;
}
