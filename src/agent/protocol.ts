/**
 * The agent's side of the agent ⇄ control plane protocol (docs/control-protocol.md, "Agent ⇄
 * control plane"), as Zod schemas. What the agent sends is built to these types; what it
 * receives is parsed with them (unknown fields are ignored, so the control plane may add some).
 */
import { z } from 'zod';
import { peerAccessSchema } from '../ckpt/daemon/index.ts';

/** The path prefix of every agent route. */
export const apiPrefix = '/api/v1';

export const deviceKinds = ['cpu', 'nvidia', 'amd'] as const;
export const deviceHealths = ['ok', 'degraded', 'failed'] as const;
export const nodeRoles = ['worker', 'spare'] as const;
export const rankStates = ['starting', 'running', 'exited'] as const;
export const checkpointLevels = ['L1', 'L2', 'L3'] as const;

export const deviceSchema = z.object({
  index: z.int().min(0),
  kind: z.enum(deviceKinds),
  model: z.string(),
  memoryBytes: z.int().min(0),
  health: z.enum(deviceHealths),
});
/** One accelerator (or virtual CPU device) as the control plane sees it. */
export type DeviceInfo = z.infer<typeof deviceSchema>;

export const joinRequestSchema = z.object({
  joinToken: z.string(),
  name: z.string().min(1),
  labels: z.record(z.string(), z.string()),
  devices: z.array(deviceSchema),
  hostMemoryBytes: z.int().min(0),
  role: z.enum(nodeRoles).optional(),
  ckpt: z.object({ peerPort: z.int().min(0).max(65535) }),
  /** Where peers reach this node's checkpoint daemon, when it listens on one address (not 0.0.0.0). */
  host: z.string().min(1).optional(),
  /** On a re-join: the stored node credential (also sent as `Authorization: Bearer`). */
  credential: z.string().optional(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const joinResponseSchema = z.object({
  nodeId: z.string().min(1),
  credential: z.string().min(1),
  heartbeatIntervalMs: z.number().positive().optional(),
});
export type JoinResponse = z.infer<typeof joinResponseSchema>;

export const probeResultSchema = z.object({
  name: z.string(),
  ok: z.boolean(),
  message: z.string(),
});
export type ProbeResult = z.infer<typeof probeResultSchema>;

export const progressSchema = z.object({
  step: z.int().min(0),
  loss: z.number().nullable(),
  tokensPerS: z.number().nullable(),
  at: z.string(),
});
/** A rank's last progress report, with when the agent received it (ISO time). */
export type RankProgress = z.infer<typeof progressSchema>;

export const rankReportSchema = z.object({
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  state: z.enum(rankStates),
  pid: z.int().nullable(),
  exitCode: z.int().nullable(),
  signal: z.string().nullable(),
  progress: progressSchema.nullable(),
});
export type RankReport = z.infer<typeof rankReportSchema>;

export const heartbeatRequestSchema = z.object({
  at: z.string(),
  health: z.object({
    probes: z.array(probeResultSchema),
    devices: z.array(deviceSchema),
    freeBytes: z.object({ l1: z.int().nullable(), l3: z.int().nullable() }),
  }),
  ranks: z.array(rankReportSchema),
});
export type HeartbeatRequest = z.infer<typeof heartbeatRequestSchema>;

export const peerSchema = z.object({
  node: z.string().min(1),
  host: z.string().min(1),
  port: z.int().min(1).max(65535),
});

const keepSchema = z.partialRecord(z.enum(checkpointLevels), z.int().min(1));

export const launchCommandSchema = z.object({
  kind: z.literal('launch'),
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  attempt: z.int().min(0),
  ranks: z.array(z.object({ rank: z.int().min(0), localRank: z.int().min(0) })).min(1),
  worldSize: z.int().min(1),
  localWorldSize: z.int().min(1),
  masterAddr: z.string().min(1),
  masterPort: z.int().min(1).max(65535),
  command: z.array(z.string()).min(1),
  workingDir: z.string().min(1),
  env: z.record(z.string(), z.string()).default({}),
  checkpoint: z
    .object({
      everySteps: z.int().min(1).nullish(),
      l3Path: z.string().min(1).nullish(),
      l3Every: z.int().min(1).default(1),
      keep: keepSchema.default({}),
      replicaPeer: peerSchema.nullable().default(null),
      peers: z.array(peerSchema).default([]),
      /**
       * This node's checkpoint-peer keys and grants for this attempt (peer-auth.ts): the
       * keys it dials the job's other nodes with, and what each of them may read and write
       * here. Secret: passed to the daemon over IPC, never logged or written to disk.
       */
      peerAccess: peerAccessSchema.optional(),
    })
    .default({ l3Every: 1, keep: {}, replicaPeer: null, peers: [] }),
});
/** Start these local ranks of a job attempt. */
export type LaunchCommand = z.infer<typeof launchCommandSchema>;

export const killCommandSchema = z.object({
  kind: z.literal('kill'),
  jobId: z.string(),
  attempt: z.int().min(0),
});
/** Stop every local rank of the job (this attempt and older): SIGTERM, SIGKILL after the grace. */
export type KillCommand = z.infer<typeof killCommandSchema>;

export const faultKinds = ['kill-node', 'kill-rank', 'fail-probe'] as const;
export const faultCommandSchema = z.object({
  kind: z.literal('fault'),
  fault: z.enum(faultKinds),
  jobId: z.string().optional(),
  rank: z.int().min(0).optional(),
  message: z.string().optional(),
});
/** Fault injection for tests and demos (`POST /nodes/{id}/faults`), carried out by the agent. */
export type FaultCommand = z.infer<typeof faultCommandSchema>;

export const commandSchema = z.discriminatedUnion('kind', [
  launchCommandSchema,
  killCommandSchema,
  faultCommandSchema,
]);
export type AgentCommand = z.infer<typeof commandSchema>;

/** The heartbeat reply; commands are parsed one by one (a bad one is skipped, not fatal). */
export const heartbeatResponseSchema = z.object({
  commands: z.array(z.unknown()).default([]),
});

export const rankExitedEventSchema = z.object({
  kind: z.literal('rank-exited'),
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  exitCode: z.int().nullable(),
  signal: z.string().nullable(),
});
export const progressEventSchema = z.object({
  kind: z.literal('progress'),
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  step: z.int().min(0),
  loss: z.number().nullable(),
  tokensPerS: z.number().nullable(),
  /** The rank's own step time, when it reported one (straggler detection). */
  stepTimeS: z.number().min(0).nullable().optional(),
});
export const checkpointCommittedEventSchema = z.object({
  kind: z.literal('checkpoint-committed'),
  jobId: z.string(),
  level: z.enum(checkpointLevels),
  step: z.int().min(0),
});
export const restoredEventSchema = z.object({
  kind: z.literal('restored'),
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  step: z.int().min(0),
  level: z.enum(checkpointLevels),
});
export const probeFailedEventSchema = z.object({
  kind: z.literal('probe-failed'),
  name: z.string(),
  message: z.string(),
});
export const agentEventSchema = z.discriminatedUnion('kind', [
  rankExitedEventSchema,
  progressEventSchema,
  checkpointCommittedEventSchema,
  restoredEventSchema,
  probeFailedEventSchema,
]);
/** What the agent pushes at once through `POST /agents/{nodeId}/events`. */
export type AgentEvent = z.infer<typeof agentEventSchema>;

export const eventsRequestSchema = z.object({ events: z.array(agentEventSchema) });

export const logChunkSchema = z.object({
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  stream: z.enum(['stdout', 'stderr']),
  text: z.string(),
});
/** One chunk of a rank's output (`POST /agents/{nodeId}/logs`). */
export type LogChunk = z.infer<typeof logChunkSchema>;

/** `POST /v1/progress` on the agent's Unix socket, from `cube.report_progress`. */
export const progressReportSchema = z.object({
  jobId: z.string().min(1),
  rank: z.int().min(0),
  step: z.int().min(0),
  loss: z.number().nullish(),
  tokensPerS: z.number().nullish(),
  /** Seconds this rank took per step, by its own measure (`cube.report_progress`). */
  stepTimeS: z.number().min(0).nullish(),
});
export type ProgressReport = z.infer<typeof progressReportSchema>;

/** `POST /v1/restored` on the agent's Unix socket, from `cube.report_restored`. */
export const restoredReportSchema = z.object({
  jobId: z.string().min(1),
  rank: z.int().min(0),
  step: z.int().min(0),
  level: z.enum(checkpointLevels),
});
export type RestoredReport = z.infer<typeof restoredReportSchema>;
