import type {
  CheckpointLevel,
  CheckpointRecord,
  Device,
  Event,
  Job,
  JobSpec,
  JobState,
  Node,
  NodeHealth,
  NodeLabels,
  NodeRole,
  NodeState,
  NewEvent,
  Placement,
  ProgressSample,
} from '../model/index.ts';

/** What an agent reports when it joins (the join token is checked before, by the caller). */
export interface NodeJoin {
  readonly name: string;
  readonly labels: NodeLabels;
  readonly devices: readonly Device[];
  readonly hostMemoryBytes: number;
  /** Default `worker`. */
  readonly role?: NodeRole;
  /** The address the control plane saw the agent at; peers reach its checkpoint daemon there. */
  readonly host?: string | null;
  readonly ckptPeerPort?: number | null;
  /** The credential of an earlier join, to re-attach the same node after an agent restart. */
  readonly credential?: string | null;
  /** The join time, epoch ms; default the store's clock. */
  readonly now?: number;
}

/** What the result of a join carries. */
export interface NodeJoinResult {
  readonly node: Node;
  /** The node's credential: shown here only; the store keeps its SHA-256 hash. */
  readonly credential: string;
  /** True when the join re-attached an existing node (same id, same credential). */
  readonly rejoined: boolean;
}

/** Fields of a node that can change after it joined. Absent fields stay as they are. */
export interface NodePatch {
  readonly state?: NodeState;
  readonly role?: NodeRole;
  readonly labels?: NodeLabels;
  readonly devices?: readonly Device[];
  readonly hostMemoryBytes?: number;
  readonly host?: string | null;
  readonly ckptPeerPort?: number | null;
  /** Epoch ms. */
  readonly lastHeartbeatAt?: number | null;
  readonly health?: NodeHealth | null;
  /** Optimistic check: fail with INFEASIBLE unless the node is in (one of) these states. */
  readonly expectState?: NodeState | readonly NodeState[];
}

/** Fields of a job that can change. Absent fields stay as they are. */
export interface JobPatch {
  readonly state?: JobState;
  readonly attempt?: number;
  readonly restarts?: number;
  readonly placement?: Placement | null;
  readonly placementExplanation?: readonly string[];
  readonly reason?: string | null;
  /** Epoch ms. */
  readonly startedAt?: number | null;
  /** Epoch ms. */
  readonly endedAt?: number | null;
  /** Optimistic check: fail with INFEASIBLE unless the job is in (one of) these states. */
  readonly expectState?: JobState | readonly JobState[];
}

/** Which events to list; all filters combine. Events come in id order. */
export interface EventFilter {
  readonly jobId?: string;
  readonly nodeId?: string;
  /** Only events with a larger id (for paging and for following the log). */
  readonly afterId?: number;
  readonly kinds?: readonly string[];
  /** At most this many; default all. */
  readonly limit?: number;
}

/** Which progress samples to list. Samples come in the order they were recorded. */
export interface ProgressFilter {
  readonly rank?: number;
  readonly attempt?: number;
  /** Only samples with a larger step. */
  readonly afterStep?: number;
  readonly limit?: number;
}

/** A checkpoint of a job, as listed for its timeline. */
export interface CheckpointEntry {
  readonly step: number;
  readonly level: CheckpointLevel;
  /** Epoch ms. */
  readonly at: number;
}

/** What an API token may do (docs/control-protocol.md, "Roles"). */
export const apiRoles = ['admin', 'user', 'viewer', 'metrics'] as const;
export type ApiRole = (typeof apiRoles)[number];

/** An API token as the store knows it: never the secret. Times are epoch ms. */
export interface ApiTokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: ApiRole;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** Called after a transaction commits, with the events it appended, in id order. */
export type EventListener = (events: readonly Event[]) => void;

/**
 * The control plane's durable state: tokens, nodes, jobs, their events, progress samples and
 * checkpoints. Every mutating method runs in one transaction together with the events it
 * appends, so a state change and its event are durable together before the promise resolves.
 *
 * Times are epoch milliseconds, except `Event.at`, which is an ISO string as the API serves it.
 * Unknown ids fail with CubeError UNKNOWN_ID, invalid values (an event that does not match its
 * kind's schema) with INVALID_VALUE, and a failed `expectState` check with INFEASIBLE; a failed
 * method changes nothing.
 */
export interface StateStore {
  /** Closes the database; the store cannot be used afterwards. */
  close(): Promise<void>;

  /**
   * Creates an API token with `role` (default `admin`): 32 random bytes, base64url, returned
   * only here.
   */
  createApiToken(
    name: string,
    options?: { role?: ApiRole },
  ): Promise<{ id: string; token: string }>;
  /** True when `token` is a current (not revoked) API token. */
  verifyApiToken(token: string): Promise<boolean>;
  /** The current (not revoked) API token that `token` is, or null. */
  authenticateApiToken(token: string): Promise<ApiTokenInfo | null>;
  /** Every API token (never the secret), in creation order, revoked ones included. */
  listApiTokens(): Promise<ApiTokenInfo[]>;
  /**
   * Revokes the API token with this id, or else the one not yet revoked with this name; it
   * fails at once. Unknown ids fail with UNKNOWN_ID. Returns the token after it.
   */
  revokeApiToken(idOrName: string): Promise<ApiTokenInfo>;
  /** Creates a join token for agents: 32 random bytes, base64url, returned only here. */
  createJoinToken(name: string): Promise<{ id: string; token: string }>;
  /** True when `token` is a current join token. */
  verifyJoinToken(token: string): Promise<boolean>;

  /**
   * Joins a node and appends `node-joined`. The same name with the node's current credential
   * re-attaches that node (same id and credential, `rejoined`); its state returns to `ready`
   * unless it was cordoned. A name held by a `ready` or `cordoned` node without its credential
   * fails with INFEASIBLE; a `down` node's name is taken over by a new node and the old one
   * becomes `left`.
   */
  joinNode(join: NodeJoin): Promise<NodeJoinResult>;
  /** The node when `credential` is its current one and it has not left; otherwise null. */
  authenticateNode(nodeId: string, credential: string): Promise<Node | null>;
  getNode(id: string): Promise<Node | null>;
  /** Nodes in join order. */
  listNodes(filter?: { states?: readonly NodeState[] }): Promise<Node[]>;
  /** Applies `patch` and appends `events` in one transaction; returns the node after it. */
  updateNode(id: string, patch: NodePatch, events?: readonly NewEvent[]): Promise<Node>;
  /**
   * Stores the last heartbeat time and health (where given) of many nodes in one transaction,
   * without events: what `cube nodes` shows, not a state change (all or none; unknown ids fail).
   */
  recordHeartbeats(
    records: readonly { nodeId: string; at: number; health?: Node['health'] }[],
  ): Promise<void>;

  /**
   * Stores a `queued` job for a validated spec and appends `job-submitted`; `owner` is the id
   * of the API token that submitted it.
   */
  createJob(spec: JobSpec, options?: { now?: number; owner?: string }): Promise<Job>;
  getJob(id: string): Promise<Job | null>;
  /** Jobs in submission order. */
  listJobs(filter?: { states?: readonly JobState[] }): Promise<Job[]>;
  /** Applies `patch` and appends `events` in one transaction; returns the job after it. */
  updateJob(id: string, patch: JobPatch, events?: readonly NewEvent[]): Promise<Job>;

  /** Appends events (all or none) and returns them with their ids and times. */
  appendEvents(events: readonly NewEvent[]): Promise<Event[]>;
  listEvents(filter: EventFilter): Promise<Event[]>;
  /** The largest event id so far, 0 when there is none. */
  lastEventId(): Promise<number>;
  /**
   * Calls `listener` after each commit that appended events, with those events. Returns the
   * function that unsubscribes. Only writes through this store instance are seen.
   */
  subscribe(listener: EventListener): () => void;

  /** Records progress samples (one row per report), all or none. */
  recordProgress(samples: readonly ProgressSample[]): Promise<void>;
  listProgress(jobId: string, options?: ProgressFilter): Promise<ProgressSample[]>;

  /**
   * Records a committed checkpoint and appends `events` with it. The same job, step and level
   * is recorded once: a repeat (another node reporting the same checkpoint) changes nothing
   * and appends no events.
   */
  recordCheckpoint(c: CheckpointRecord, events?: readonly NewEvent[]): Promise<void>;
  /** A job's checkpoints by step, then level. */
  listCheckpoints(jobId: string): Promise<CheckpointEntry[]>;
}
