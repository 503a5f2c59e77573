import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import {
  DeviceSchema,
  JobIdSchema,
  NodeHealthSchema,
  NodeLabelsSchema,
  NodeRoleSchema,
  type Job,
  type Node,
} from '../model/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { StateStore } from '../store/index.ts';
import type { ControlMetrics } from './metrics.ts';
import {
  apiSchemaRegistry,
  jsonResponse,
  OkSchema,
  routeSchema,
  type ApiTypeProvider,
} from './api-schemas.ts';
import type { NodeScope } from './node-scope.ts';
import { type RankLogs, rankLogPath } from './rank-logs.ts';

/** The `{nodeId}` of an agent route: the node the credential must belong to. */
export const agentNodeParams = z.object({ nodeId: z.string().min(1).max(64) });

export const JoinBodySchema = z.object({
  joinToken: z.string().min(1),
  name: z.string().regex(/^[A-Za-z0-9._-]{1,63}$/),
  labels: NodeLabelsSchema.default({}),
  devices: z.array(DeviceSchema),
  hostMemoryBytes: z.int().min(0),
  role: NodeRoleSchema.optional(),
  host: z.string().min(1).optional(),
  ckpt: z.object({ peerPort: z.int().min(1).max(65535) }).optional(),
  credential: z.string().optional(),
});

export const JoinedSchema = z.strictObject({
  nodeId: z.string(),
  credential: z.string().describe("the node's credential for its /agents/{nodeId}/... routes"),
  rejoined: z.boolean(),
  heartbeatIntervalMs: z.int().min(1),
});

const rankReport = z.looseObject({
  jobId: z.string(),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  state: z.enum(['starting', 'running', 'exited']),
  pid: z.int().nullable().optional(),
  exitCode: z.int().nullable().optional(),
  signal: z.string().nullable().optional(),
  progress: z
    .looseObject({
      step: z.int().min(0),
      at: z.union([z.number(), z.string()]).nullable().optional(),
    })
    .nullable()
    .optional(),
});

export const HeartbeatBodySchema = z.looseObject({
  health: NodeHealthSchema.optional(),
  ranks: z.array(rankReport).default([]),
});

const peerEndpoint = z.strictObject({ node: z.string(), host: z.string(), port: z.int() });

/** What the control plane tells a node to do (src/control/orchestrator/commands.ts). */
export const NodeCommandSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('launch'),
    jobId: z.string(),
    attempt: z.int().min(0),
    ranks: z.array(z.strictObject({ rank: z.int().min(0), localRank: z.int().min(0) })),
    worldSize: z.int().min(1),
    localWorldSize: z.int().min(1),
    masterAddr: z.string(),
    masterPort: z.int(),
    command: z.array(z.string()),
    workingDir: z.string(),
    env: z.record(z.string(), z.string()),
    checkpoint: z.strictObject({
      everySteps: z.int(),
      l3Path: z.string(),
      l3Every: z.int(),
      keep: z.record(z.string(), z.number()),
      replicaPeer: peerEndpoint.nullable(),
      peers: z.array(peerEndpoint),
      // The node's checkpoint-peer keys and grants for this attempt (src/ckpt/daemon): the
      // agent hands them to its daemon as they are.
      peerAccess: z.looseObject({}).describe("the node's checkpoint-peer keys and grants"),
    }),
  }),
  z.strictObject({ kind: z.literal('kill'), jobId: z.string(), attempt: z.int().min(0) }),
  z.strictObject({
    kind: z.literal('fault'),
    fault: z.enum(['kill-node', 'kill-rank', 'fail-probe']),
    jobId: z.string().optional(),
    rank: z.int().optional(),
  }),
]);
apiSchemaRegistry.add(NodeCommandSchema, {
  id: 'NodeCommand',
  description: "A command for a node, delivered in the reply to the node's heartbeat.",
});

export const HeartbeatReplySchema = z.strictObject({ commands: z.array(NodeCommandSchema) });

export const AgentEventSchema = z.discriminatedUnion('kind', [
  z.looseObject({
    kind: z.literal('rank-exited'),
    jobId: z.string(),
    attempt: z.int().min(0),
    rank: z.int().min(0),
    exitCode: z.int().nullable().default(null),
    signal: z.string().nullable().default(null),
  }),
  z.looseObject({
    kind: z.literal('progress'),
    jobId: z.string(),
    attempt: z.int().min(0),
    rank: z.int().min(0),
    step: z.int().min(0),
    loss: z.number().nullable().default(null),
    tokensPerS: z.number().min(0).nullable().default(null),
    stepTimeS: z.number().min(0).nullable().default(null),
  }),
  z.looseObject({
    kind: z.literal('checkpoint-committed'),
    jobId: z.string(),
    level: z.enum(['L1', 'L2', 'L3']),
    step: z.int().min(0),
  }),
  z.looseObject({
    kind: z.literal('restored'),
    jobId: z.string(),
    attempt: z.int().min(0),
    rank: z.int().min(0),
    step: z.int().min(0),
    level: z.enum(['L1', 'L2', 'L3']),
  }),
  z.looseObject({
    kind: z.literal('probe-failed'),
    name: z.string(),
    message: z.string().default(''),
  }),
]);

export const AgentEventsReplySchema = z.strictObject({
  ok: z.literal(true),
  accepted: z.int().min(0),
  refused: z.array(
    z.strictObject({
      index: z.int().min(0),
      kind: z.string(),
      code: z.literal('FORBIDDEN'),
      message: z.string(),
    }),
  ),
});

export const RankLogBodySchema = z.object({
  // A job id, never a path: it names a directory under <data>/logs.
  jobId: JobIdSchema,
  attempt: z.int().min(0),
  rank: z.int().min(0),
  stream: z.enum(['stdout', 'stderr']),
  text: z.string(),
});

export interface AgentRoutesOptions {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  readonly metrics: ControlMetrics;
  readonly scope: NodeScope;
  readonly rankLogs: RankLogs;
  readonly dataDir: string;
  readonly heartbeatIntervalMs?: number;
}

/** The node a request was authenticated as (routes with access `node` always have one). */
function requestNode(request: FastifyRequest): Node {
  const p = request.principal;
  if (p.kind !== 'node') throw new CubeError('UNAUTHORIZED', 'this route needs a node credential');
  return p.node;
}

/**
 * The agents' routes (docs/control-protocol.md): join with a join token, then heartbeat,
 * events and rank log lines with the node's own credential (security scheme `nodeCredential`).
 */
export function registerAgentRoutes(app: FastifyInstance, options: AgentRoutesOptions): void {
  const { store, orchestrator, metrics, scope, rankLogs, dataDir } = options;
  const api = app.withTypeProvider<ApiTypeProvider>();
  const node = { access: 'node' } as const;

  api.post(
    '/api/v1/agents/join',
    {
      schema: routeSchema('join', {
        operationId: 'joinNode',
        summary: 'Join a node to the cluster',
        description:
          "An agent joins with a join token (`cube token join`) and gets the node's id and credential. The same name with the node's current credential re-attaches that node.",
        tags: ['agents'],
        body: JoinBodySchema,
        response: { 200: jsonResponse(JoinedSchema, 'The node joined (or rejoined).') },
        // 422: the name of a ready or cordoned node without its credential.
        errors: [401, 422],
      }),
      config: { access: 'join' },
    },
    async (request) => {
      const body = request.body;
      if (!(await store.verifyJoinToken(body.joinToken)))
        throw new CubeError('UNAUTHORIZED', 'the join token is not valid', {
          where: { field: 'joinToken' },
        });
      const joined = await store.joinNode({
        name: body.name,
        labels: body.labels,
        devices: body.devices,
        hostMemoryBytes: body.hostMemoryBytes,
        ...(body.role === undefined ? {} : { role: body.role }),
        host: body.host ?? request.ip.replace(/^::ffff:/, ''),
        ckptPeerPort: body.ckpt?.peerPort ?? null,
        ...(body.credential === undefined ? {} : { credential: body.credential }),
      });
      return {
        nodeId: joined.node.id,
        credential: joined.credential,
        rejoined: joined.rejoined,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      };
    },
  );

  api.post(
    '/api/v1/agents/:nodeId/heartbeat',
    {
      schema: routeSchema('node', {
        operationId: 'sendHeartbeat',
        summary: "Report a node's health and ranks",
        tags: ['agents'],
        params: agentNodeParams,
        body: HeartbeatBodySchema,
        response: {
          200: jsonResponse(HeartbeatReplySchema, 'The commands waiting for this node.'),
        },
      }),
      config: node,
    },
    async (request) => {
      const started = performance.now();
      const self = requestNode(request);
      // A node reports only the ranks placed on it; others' are dropped, not taken in. Each job
      // is read once per heartbeat (an agent reports all its ranks of a job together), for the
      // check and for the orchestrator: this is the control plane's hottest route.
      const jobs = new Map<string, Job | null>();
      const ranks = [];
      for (const r of request.body.ranks) {
        let job = jobs.get(r.jobId);
        if (job === undefined) {
          job = await store.getJob(r.jobId);
          jobs.set(r.jobId, job);
        }
        if ((await scope.refusal(self, r, { job })) === null) ranks.push(r);
      }
      const commands = await orchestrator.heartbeat(self, {
        ...(request.body.health === undefined ? {} : { health: request.body.health }),
        ranks,
        jobs,
      });
      metrics.heartbeatsTotal.inc();
      metrics.heartbeatLatencySeconds.observe((performance.now() - started) / 1000);
      return { commands };
    },
  );

  api.post(
    '/api/v1/agents/:nodeId/events',
    {
      schema: routeSchema('node', {
        operationId: 'reportAgentEvents',
        summary: "Report a node's rank and checkpoint events",
        description:
          'Each event on its own: those the node may not report are refused with a reason and the rest apply. A batch of refused events only is 403.',
        tags: ['agents'],
        params: agentNodeParams,
        body: z.object({ events: z.array(AgentEventSchema) }),
        response: {
          200: jsonResponse(AgentEventsReplySchema, 'How many applied, and which were refused.'),
        },
        errors: [403],
      }),
      config: node,
    },
    async (request) => {
      const self = requestNode(request);
      // Each event on its own: one the node may not report (a stale commit of a job that has
      // moved off the node, a rank of a deleted job, a forgery) is refused with its reason and
      // the others are applied, so that an agent's batch does not lose its good events with a
      // bad one. The refused are checked before any applies; a batch of refused events only is
      // 403 (nothing of it applies). Either way the agent drops them: a retry would get the
      // same answer.
      const accepted = [];
      const refused: { index: number; kind: string; code: 'FORBIDDEN'; message: string }[] = [];
      for (const [index, e] of request.body.events.entries()) {
        const why = await scope.eventRefusal(self, e);
        if (why === null) accepted.push(e);
        else refused.push({ index, kind: e.kind, code: 'FORBIDDEN', message: why });
      }
      if (accepted.length === 0 && refused.length > 0) {
        const [first] = refused;
        throw new CubeError(
          'FORBIDDEN',
          `${refused.length === 1 ? '' : `all ${refused.length} events refused; `}events[${first?.index}] (${first?.kind}): ${first?.message}`,
          { where: { path: `events.${first?.index}`, node: self.name } },
        );
      }
      await orchestrator.agentEvents(self, accepted);
      return { ok: true as const, accepted: accepted.length, refused };
    },
  );

  api.post(
    '/api/v1/agents/:nodeId/logs',
    {
      schema: routeSchema('node', {
        operationId: 'appendRankLog',
        summary: "Append a rank's output to its log",
        tags: ['agents'],
        params: agentNodeParams,
        body: RankLogBodySchema,
        response: { 200: jsonResponse(OkSchema, 'Appended.') },
        errors: [403],
      }),
      config: node,
    },
    async (request) => {
      const self = requestNode(request);
      const { jobId, attempt, rank, text } = request.body;
      const why = await scope.refusal(self, { jobId, attempt, rank });
      if (why !== null) throw new CubeError('FORBIDDEN', why, { where: { rank, node: self.name } });
      await rankLogs.append(rankLogPath(dataDir, jobId, attempt, rank), text);
      return { ok: true as const };
    },
  );
}
