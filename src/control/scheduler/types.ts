/**
 * The scheduler's inputs and outputs. The scheduler is a pure library: it does not import the
 * control plane's Zod models (docs/control-protocol.md) but declares the few fields it reads, so
 * the parsed `Node`, `Job` and allocation records of the store fit these types as they are.
 */

/** The kind of accelerator a device (and a job) uses. */
export type DeviceKind = 'cpu' | 'nvidia' | 'amd';

/** A device's health as its node reports it; only `ok` devices count as healthy. */
export type DeviceHealth = 'ok' | 'degraded' | 'failed';

/** `ready` nodes are schedulable; the others are not. */
export type NodeState = 'ready' | 'cordoned' | 'down' | 'left';

/** Spares are kept in reserve for replacing failed nodes. */
export type NodeRole = 'worker' | 'spare';

/** One device of a node. */
export interface SchedulerDevice {
  readonly index: number;
  readonly kind: DeviceKind;
  readonly health: DeviceHealth;
}

/** Topology labels; free-form `key=value` labels may sit beside them and are ignored. */
export interface NodeLabels {
  readonly server?: string | undefined;
  readonly superNode?: string | undefined;
  readonly pod?: string | undefined;
  readonly [key: string]: string | undefined;
}

/** One machine as the scheduler sees it. */
export interface SchedulerNode {
  readonly id: string;
  readonly name: string;
  readonly state: NodeState;
  readonly role: NodeRole;
  readonly labels: NodeLabels;
  readonly devices: readonly SchedulerDevice[];
}

/** The parallel layout of a job: `tp × pp × dp` equals the world size. */
export interface ParallelLayout {
  readonly tp: number;
  readonly pp: number;
  readonly dp: number;
}

/** The part of a job spec that placement depends on. */
export interface SchedulerJobSpec {
  readonly ranks: { readonly nodes: number; readonly devicesPerNode: number };
  readonly deviceType: DeviceKind;
  readonly layout?: ParallelLayout | undefined;
}

/** A job waiting to be placed. Higher `priority` runs first, then the older `submittedAt`. */
export interface SchedulerJob {
  readonly id: string;
  readonly priority: number;
  /** ISO time or milliseconds since the epoch. */
  readonly submittedAt: string | number;
  readonly spec: SchedulerJobSpec;
}

/** Nodes held by a job that is scheduled or running; a node belongs to at most one job. */
export interface Allocation {
  readonly jobId: string;
  readonly nodeIds: readonly string[];
}

/** Where one rank runs. */
export interface RankAssignment {
  readonly rank: number;
  readonly nodeId: string;
  readonly localRank: number;
}

/** The ranks one node runs, in local-rank order. */
export interface NodeAssignment {
  readonly nodeId: string;
  readonly nodeName: string;
  readonly ranks: readonly number[];
  readonly localRanks: readonly number[];
  /** The healthy devices the local ranks use, parallel to `localRanks`. */
  readonly deviceIndices: readonly number[];
}

/**
 * A whole job's place on the cluster. Nodes are listed in placement order: the node at index
 * `i` runs ranks `i × devicesPerNode + localRank`.
 */
export interface Placement {
  readonly nodes: readonly NodeAssignment[];
  /** Every rank, ascending. */
  readonly ranks: readonly RankAssignment[];
  readonly worldSize: number;
  readonly devicesPerNode: number;
  readonly deviceType: DeviceKind;
  /** Distinct super-nodes used (nodes without the label count as one unnamed super-node). */
  readonly superNodesSpanned: number;
  readonly podsSpanned: number;
  /** Human-readable lines on why the job sits where it does (`cube jobs show`). */
  readonly explanation: readonly string[];
}

/** The least of a placement that node replacement and replica peers need (the stored form). */
export interface PlacementRanks {
  readonly ranks: readonly RankAssignment[];
}

/** Scheduling options. */
export interface ScheduleOptions {
  /**
   * Keep `spare` nodes out of first placement, for replacing failed nodes (default true).
   * With false, spares are placed like workers.
   */
  readonly reserveSpares?: boolean;
  /**
   * Let lower-priority jobs run while a higher-priority job waits, on nodes the waiting job
   * cannot use anyway (default false: strict priority order).
   */
  readonly backfill?: boolean;
}
