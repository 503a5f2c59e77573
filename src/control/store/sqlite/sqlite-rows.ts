import type { Selectable } from 'kysely';
import type {
  Event,
  Job,
  JobSpec,
  JobState,
  Node,
  NodeRole,
  NodeState,
  ProgressSample,
} from '../../model/index.ts';
import type { EventsTable, JobsTable, NodesTable, ProgressTable } from './sqlite-tables.ts';

// Rows are written only by this store after validation, so reading them back trusts their
// shape instead of parsing each one again.

/** A `nodes` row as a Node. */
export function nodeFromRow(row: Selectable<NodesTable>): Node {
  return {
    id: row.id,
    name: row.name,
    state: row.state as NodeState,
    role: row.role as NodeRole,
    labels: JSON.parse(row.labels_json) as Node['labels'],
    devices: JSON.parse(row.devices_json) as Node['devices'],
    hostMemoryBytes: row.host_memory_bytes,
    host: row.host,
    ckptPeerPort: row.ckpt_peer_port,
    joinedAt: row.joined_at,
    lastHeartbeatAt: row.last_heartbeat_at,
    health: row.health_json === null ? null : (JSON.parse(row.health_json) as Node['health']),
  };
}

/** A `jobs` row as a Job. */
export function jobFromRow(row: Selectable<JobsTable>): Job {
  return {
    id: row.id,
    spec: JSON.parse(row.spec_json) as JobSpec,
    state: row.state as JobState,
    attempt: row.attempt,
    restarts: row.restarts,
    placement:
      row.placement_json === null ? null : (JSON.parse(row.placement_json) as Job['placement']),
    placementExplanation: JSON.parse(row.placement_explanation_json) as readonly string[],
    reason: row.reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    ...(row.owner === null ? {} : { owner: row.owner }),
  };
}

/** An `events` row as an Event; absent ids are left out, `at` becomes ISO. */
export function eventFromRow(row: Selectable<EventsTable>): Event {
  return {
    id: row.id,
    at: new Date(row.at).toISOString(),
    kind: row.kind,
    ...(row.job_id === null ? {} : { jobId: row.job_id }),
    ...(row.node_id === null ? {} : { nodeId: row.node_id }),
    ...(row.rank === null ? {} : { rank: row.rank }),
    ...(row.attempt === null ? {} : { attempt: row.attempt }),
    data: JSON.parse(row.data_json) as unknown,
  } as Event;
}

/** A `progress` row as a ProgressSample. */
export function progressFromRow(row: Selectable<ProgressTable>): ProgressSample {
  return {
    jobId: row.job_id,
    attempt: row.attempt,
    rank: row.rank,
    step: row.step,
    loss: row.loss,
    tokensPerS: row.tokens_per_s,
    at: row.at,
  };
}
