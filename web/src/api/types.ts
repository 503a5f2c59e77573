// The shapes the control plane's public API serves, named for the views. Every type here comes
// from ./openapi.ts, which openapi-typescript generates from the live OpenAPI document (whose
// schemas are the ones the server serializes with): the dashboard talks to the server only over
// HTTP, like any other client, and writes none of the API's types by hand.
import type { components, operations } from './openapi.ts';

type Schemas = components['schemas'];

/** The JSON body of an operation's answer with `status`. */
export type ResponseOf<
  O extends keyof operations,
  S extends keyof operations[O]['responses'] = 200 & keyof operations[O]['responses'],
> = operations[O]['responses'][S] extends {
  readonly content: { readonly 'application/json': infer B };
}
  ? B
  : never;

export type ClusterNode = Schemas['Node'];
export type NodeState = ClusterNode['state'];
export type Device = ClusterNode['devices'][number];
export type DeviceHealth = Device['health'];
export type ProbeResult = NonNullable<NonNullable<ClusterNode['health']>['probes']>[number];

export type Job = Schemas['Job'];
export type JobState = Job['state'];
export type JobSpec = Job['spec'];
export type RankPlacement = NonNullable<Job['placement']>[number];
export type JobDetail = Schemas['JobDetail'];
export type CheckpointEntry = Schemas['CheckpointEntry'];
export type CheckpointLevel = CheckpointEntry['level'];

export const terminalJobStates: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/** An event of the log; `data` holds what its kind says. */
export type CubeEvent = Schemas['Event'];
export type EventKind = CubeEvent['kind'];

// Every kind once: a kind the server adds and this list lacks fails the dashboard's typecheck.
const kinds: Record<EventKind, true> = {
  'job-submitted': true,
  'job-scheduled': true,
  'job-waiting': true,
  'rank-launched': true,
  'rank-running': true,
  'rank-exited': true,
  'job-running': true,
  'checkpoint-committed': true,
  'fault-detected': true,
  'node-cordoned': true,
  'node-uncordoned': true,
  'spare-taken': true,
  'job-restarting': true,
  straggler: true,
  'job-restored': true,
  'job-resumed': true,
  'job-succeeded': true,
  'job-failed': true,
  'job-cancelled': true,
  'node-joined': true,
  'node-down': true,
  'node-up': true,
};

/** Every event kind of the log (the stream names each event by its kind). */
export const eventKinds = Object.keys(kinds) as readonly EventKind[];

/** One step of one attempt of a job, combined over ranks (`GET /jobs/{id}/series`). */
export type SeriesPoint = Schemas['SeriesPoint'];
export type LatestPoint = Schemas['LatestPoint'];

/** The answers of the calls the views make, by operation. */
export type JobList = ResponseOf<'listJobs'>;
export type NodeList = ResponseOf<'listNodes'>;
export type EventList = ResponseOf<'listEvents'>;
export type JobSeries = ResponseOf<'getJobSeries'>;
export type LatestProgress = ResponseOf<'listLatestProgress'>;
export type StreamTicket = ResponseOf<'createStreamTicket', 201>;
export type PlanOptions = ResponseOf<'getPlanOptions'>;
export type PlanResult = ResponseOf<'planJob'>;
export type SimulationReport = ResponseOf<'simulateJob'>;
export type ErrorBody = Schemas['ErrorBody'];
