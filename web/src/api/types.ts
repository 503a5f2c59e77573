// The shapes the control plane's public API serves (docs/control-protocol.md). The dashboard
// keeps its own copy: it talks to the server only over HTTP, like any other client.

export type DeviceHealth = 'ok' | 'degraded' | 'failed';

export interface Device {
  readonly index: number;
  readonly kind: 'cpu' | 'nvidia' | 'amd';
  readonly model: string;
  readonly memoryBytes: number;
  readonly health: DeviceHealth;
}

export type NodeState = 'ready' | 'cordoned' | 'down' | 'left';

export interface ProbeResult {
  readonly name: string;
  readonly ok: boolean;
  readonly message?: string;
}

export interface ClusterNode {
  readonly id: string;
  readonly name: string;
  readonly state: NodeState;
  readonly role: 'worker' | 'spare';
  readonly labels: Readonly<Record<string, string | undefined>>;
  readonly devices: readonly Device[];
  readonly hostMemoryBytes: number;
  readonly host: string | null;
  readonly joinedAt: number;
  readonly lastHeartbeatAt: number | null;
  readonly health: { readonly probes?: readonly ProbeResult[] } | null;
}

export type JobState =
  'queued' | 'scheduled' | 'running' | 'recovering' | 'succeeded' | 'failed' | 'cancelled';

export const terminalJobStates: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export interface RankPlacement {
  readonly rank: number;
  readonly nodeId: string;
  readonly localRank: number;
}

export interface JobSpec {
  readonly name: string;
  readonly command: readonly string[];
  readonly ranks: { readonly nodes: number; readonly devicesPerNode: number };
  readonly deviceType: string;
  readonly priority: number;
  readonly checkpoint: { readonly everySteps: number; readonly l3Every: number };
}

export interface Job {
  readonly id: string;
  readonly spec: JobSpec;
  readonly state: JobState;
  readonly attempt: number;
  readonly restarts: number;
  readonly placement: readonly RankPlacement[] | null;
  readonly placementExplanation: readonly string[];
  readonly reason: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt: number | null;
  readonly endedAt: number | null;
}

export type CheckpointLevel = 'L1' | 'L2' | 'L3';

export interface CheckpointEntry {
  readonly step: number;
  readonly level: CheckpointLevel;
  /** Epoch ms. */
  readonly at: number;
}

export interface JobDetail extends Job {
  readonly checkpoints: readonly CheckpointEntry[];
}

export interface CubeEvent {
  readonly id: number;
  /** ISO time. */
  readonly at: string;
  readonly kind: string;
  readonly jobId?: string | null;
  readonly nodeId?: string | null;
  readonly rank?: number | null;
  readonly attempt?: number | null;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Every event kind of the log (the stream names each event by its kind). */
export const eventKinds: readonly string[] = [
  'job-submitted',
  'job-scheduled',
  'job-waiting',
  'rank-launched',
  'rank-running',
  'rank-exited',
  'job-running',
  'checkpoint-committed',
  'fault-detected',
  'node-cordoned',
  'node-uncordoned',
  'spare-taken',
  'job-restarting',
  'straggler',
  'job-restored',
  'job-resumed',
  'job-succeeded',
  'job-failed',
  'job-cancelled',
  'node-joined',
  'node-down',
  'node-up',
];

/** One step of one attempt of a job, combined over ranks (`GET /jobs/{id}/series`). */
export interface SeriesPoint {
  readonly attempt: number;
  readonly step: number;
  /** Epoch ms. */
  readonly at: number;
  readonly loss: number | null;
  readonly tokensPerS: number | null;
  readonly ranks: number;
}

export interface LatestPoint extends SeriesPoint {
  readonly jobId: string;
}
