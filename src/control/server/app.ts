import swagger from '@fastify/swagger';
import { fastify, type FastifyInstance, type FastifyRequest } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import {
  DeviceSchema,
  JobIdSchema,
  JobSpecSchema,
  NodeHealthSchema,
  NodeLabelsSchema,
  NodeRoleSchema,
  parseJobSpec,
  validateJobSpec,
  type Event,
  type Job,
  type Node,
} from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import {
  installAccessControl,
  maySeeJob,
  ownerScope,
  requestToken,
  type Principal,
} from './access.ts';
import type { ControlMetrics } from './metrics.ts';
import { NodeScope } from './node-scope.ts';
import { maxLogReadBytes, RankLogs, rankLogPath } from './rank-logs.ts';
import { StreamTickets } from './stream-tickets.ts';
import { registerTokenRoutes } from './token-routes.ts';
import { registerPlanRoutes } from './plan-routes.ts';
import { registerSimRoutes } from './sim-routes.ts';
import { registerWebRoutes } from './web-routes.ts';

export interface ControlAppOptions {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  readonly metrics: ControlMetrics;
  /** Where rank logs are kept: `<dataDir>/logs/<job>/<attempt>/rank-R.log`. */
  readonly dataDir: string;
  readonly heartbeatIntervalMs?: number;
  /** Serve `/metrics` without a token (`cube server --metrics-public`). */
  readonly metricsPublic?: boolean;
  /** Accept `POST /nodes/:id/faults` (`cube server --allow-fault-injection`); off by default. */
  readonly allowFaultInjection?: boolean;
  /** The cap of one rank log on the server, current and rotated file together (default 64 MiB). */
  readonly rankLogMaxBytes?: number;
  /** HTTPS: the PEM certificate chain and key (`cube server --tls-cert/--tls-key`). */
  readonly https?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export { rankLogPath } from './rank-logs.ts';

const idParams = z.object({ id: z.string().min(1).max(64) });
const nodeParams = z.object({ nodeId: z.string().min(1).max(64) });

const joinBody = z.object({
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

const heartbeatBody = z.looseObject({
  health: NodeHealthSchema.optional(),
  ranks: z.array(rankReport).default([]),
});

const agentEvent = z.discriminatedUnion('kind', [
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

/**
 * `POST /jobs`: a job spec as JSON (docs/job-spec.md), or `{yaml}` holding one as YAML text (as
 * an `application/yaml` body is taken).
 */
const jobSubmitBody = z.union([
  JobSpecSchema,
  z.strictObject({ yaml: z.string().describe('a job spec as YAML text') }),
]);

const logsBody = z.object({
  // A job id, never a path: it names a directory under <data>/logs.
  jobId: JobIdSchema,
  attempt: z.int().min(0),
  rank: z.int().min(0),
  stream: z.enum(['stdout', 'stderr']),
  text: z.string(),
});

/** The node a request was authenticated as (routes with access `node` always have one). */
function requestNode(request: FastifyRequest): Node {
  const p = request.principal;
  if (p.kind !== 'node') throw new CubeError('UNAUTHORIZED', 'this route needs a node credential');
  return p.node;
}

/**
 * The control plane's HTTP API (docs/control-protocol.md): the agents' join, heartbeat, event
 * and log routes; the users' jobs, nodes, events, logs and live stream; `/metrics` and the
 * OpenAPI document. Errors are `{error: {code, message, where}}` with the CubeError's status.
 */
export async function buildControlApp(options: ControlAppOptions): Promise<FastifyInstance> {
  const { store, orchestrator, metrics, dataDir } = options;
  const app = fastify({
    logger: false,
    bodyLimit: 16 * 1024 * 1024,
    ...(options.https === undefined ? {} : { https: { ...options.https } }),
  });
  const tickets = new StreamTickets();
  const rankLogs = new RankLogs(
    options.rankLogMaxBytes === undefined ? {} : { maxBytes: options.rankLogMaxBytes },
  );
  const scope = new NodeScope(store);
  installAccessControl(app, {
    store,
    tickets,
    ...(options.metricsPublic === undefined ? {} : { metricsPublic: options.metricsPublic }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addContentTypeParser(
    ['application/yaml', 'text/yaml'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, { yaml: body }),
  );
  await app.register(swagger, {
    openapi: {
      info: { title: 'Cube control plane', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof CubeError)
      return reply.status(error.httpStatus).send({ error: error.toJSON() });
    const e = error as {
      validation?: {
        message?: string;
        instancePath?: string;
        params?: { issue?: { path?: unknown[] } };
      }[];
      statusCode?: number;
      message?: string;
    };
    if (e.validation !== undefined) {
      const first = e.validation[0];
      const path =
        (first?.params?.issue?.path ?? []).join('.') ||
        (first?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
      return reply.status(400).send({
        error: {
          code: 'INVALID_VALUE',
          message: `${path === '' ? '' : `${path}: `}${first?.message ?? e.message ?? 'invalid request'}`,
          where: { path },
        },
      });
    }
    const status = e.statusCode ?? 500;
    return reply.status(status).send({
      error: {
        code: status < 500 ? 'INVALID_VALUE' : 'INTERNAL',
        message: e.message ?? String(error),
        where: {},
      },
    });
  });

  app.get(
    '/metrics',
    { schema: { hide: true }, config: { access: 'metrics' } },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.header('content-type', metrics.registry.contentType).send(text);
    },
  );
  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: { access: 'public' } }, () =>
    app.swagger(),
  );
  // Liveness: the process answers. Readiness: the store answers too.
  app.get('/healthz', { schema: { hide: true }, config: { access: 'public' } }, () => ({
    ok: true,
  }));
  app.get(
    '/readyz',
    { schema: { hide: true }, config: { access: 'public' } },
    async (_request, reply) => {
      try {
        await store.lastEventId();
        return { ok: true };
      } catch {
        return reply.status(503).send({ ok: false });
      }
    },
  );

  const api = app.withTypeProvider<ZodTypeProvider>();

  // --- agents -------------------------------------------------------------------------------
  api.post(
    '/api/v1/agents/join',
    { schema: { body: joinBody, tags: ['agents'] }, config: { access: 'join' } },
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
      schema: { params: nodeParams, body: heartbeatBody, tags: ['agents'] },
      config: { access: 'node' },
    },
    async (request) => {
      const started = performance.now();
      const node = requestNode(request);
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
        if ((await scope.refusal(node, r, { job })) === null) ranks.push(r);
      }
      const commands = await orchestrator.heartbeat(node, {
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
      schema: {
        params: nodeParams,
        body: z.object({ events: z.array(agentEvent) }),
        tags: ['agents'],
      },
      config: { access: 'node' },
    },
    async (request) => {
      const node = requestNode(request);
      // Each event on its own: one the node may not report (a stale commit of a job that has
      // moved off the node, a rank of a deleted job, a forgery) is refused with its reason and
      // the others are applied, so that an agent's batch does not lose its good events with a
      // bad one. The refused are checked before any applies; a batch of refused events only is
      // 403 (nothing of it applies). Either way the agent drops them: a retry would get the
      // same answer.
      const accepted = [];
      const refused: { index: number; kind: string; code: 'FORBIDDEN'; message: string }[] = [];
      for (const [index, e] of request.body.events.entries()) {
        const why = await scope.eventRefusal(node, e);
        if (why === null) accepted.push(e);
        else refused.push({ index, kind: e.kind, code: 'FORBIDDEN', message: why });
      }
      if (accepted.length === 0 && refused.length > 0) {
        const [first] = refused;
        throw new CubeError(
          'FORBIDDEN',
          `${refused.length === 1 ? '' : `all ${refused.length} events refused; `}events[${first?.index}] (${first?.kind}): ${first?.message}`,
          { where: { path: `events.${first?.index}`, node: node.name } },
        );
      }
      await orchestrator.agentEvents(node, accepted);
      return { ok: true, accepted: accepted.length, refused };
    },
  );

  api.post(
    '/api/v1/agents/:nodeId/logs',
    {
      schema: { params: nodeParams, body: logsBody, tags: ['agents'] },
      config: { access: 'node' },
    },
    async (request) => {
      const node = requestNode(request);
      const { jobId, attempt, rank, text } = request.body;
      const why = await scope.refusal(node, { jobId, attempt, rank });
      if (why !== null) throw new CubeError('FORBIDDEN', why, { where: { rank, node: node.name } });
      await rankLogs.append(rankLogPath(dataDir, jobId, attempt, rank), text);
      return { ok: true };
    },
  );

  // --- users --------------------------------------------------------------------------------
  const viewer = { access: { role: 'viewer' } } as const;
  const user = { access: { role: 'user' } } as const;
  const admin = { access: { role: 'admin' } } as const;

  api.post(
    '/api/v1/jobs',
    {
      // The body's schema is for the OpenAPI document (clients, fuzzers) only: the handler
      // validates it itself (validateJobSpec, parseJobSpec), whose errors name the field, say
      // what is near a misspelled key and point into a YAML text by line, so Fastify's own
      // validation is skipped here.
      schema: { body: jobSubmitBody, tags: ['jobs'] },
      validatorCompiler: () => (data: unknown) => ({ value: data }),
      config: user,
    },
    async (request, reply) => {
      const body: unknown = request.body;
      const spec =
        typeof body === 'object' && body !== null && 'yaml' in body && typeof body.yaml === 'string'
          ? parseJobSpec(body.yaml, { format: 'yaml' })
          : validateJobSpec(body);
      const job = await store.createJob(spec, { owner: requestToken(request).id });
      // Schedule at once, but after the reply is out: the pass can take a while for a big gang.
      setImmediate(() => void orchestrator.tick());
      return reply.status(201).send(job);
    },
  );

  api.get('/api/v1/jobs', { schema: { tags: ['jobs'] }, config: viewer }, async (request) => {
    const owner = ownerScope(request.principal);
    const jobs = await store.listJobs();
    return { jobs: owner === null ? jobs : jobs.filter((j) => j.owner === owner) };
  });

  /** The job, when it exists and the caller may see it (a `user` sees only its own jobs). */
  async function getJob(id: string, principal: Principal): Promise<Job> {
    const job = await store.getJob(id);
    // Another user's job is reported as absent: a user learns nothing of others' jobs.
    if (job === null || !maySeeJob(principal, job))
      throw new CubeError('UNKNOWN_ID', `no job "${id}"`, { where: { field: 'id' } });
    return job;
  }

  api.get(
    '/api/v1/jobs/:id',
    { schema: { params: idParams, tags: ['jobs'] }, config: viewer },
    async (request) => {
      const job = await getJob(request.params.id, request.principal);
      const checkpoints = await store.listCheckpoints(job.id);
      const progress = await store.listProgress(job.id, { limit: 1_000_000 });
      const last = progress.at(-1) ?? null;
      return { ...job, checkpoints, lastProgress: last };
    },
  );

  api.post(
    '/api/v1/jobs/:id/cancel',
    { schema: { params: idParams, tags: ['jobs'] }, config: user },
    async (request) => {
      await getJob(request.params.id, request.principal);
      return orchestrator.cancel(request.params.id);
    },
  );

  api.get(
    '/api/v1/jobs/:id/events',
    {
      schema: {
        params: idParams,
        querystring: z.object({ after: z.coerce.number().int().min(0).optional() }),
        tags: ['jobs'],
      },
      config: viewer,
    },
    async (request) => {
      await getJob(request.params.id, request.principal);
      return {
        events: await store.listEvents({
          jobId: request.params.id,
          ...(request.query.after === undefined ? {} : { afterId: request.query.after }),
        }),
      };
    },
  );

  api.get(
    '/api/v1/jobs/:id/progress',
    {
      schema: {
        params: idParams,
        querystring: z.object({ rank: z.coerce.number().int().min(0).optional() }),
        tags: ['jobs'],
      },
      config: viewer,
    },
    async (request) => {
      await getJob(request.params.id, request.principal);
      return {
        progress: await store.listProgress(request.params.id, {
          ...(request.query.rank === undefined ? {} : { rank: request.query.rank }),
          limit: 1_000_000,
        }),
      };
    },
  );

  api.get(
    '/api/v1/jobs/:id/logs',
    {
      schema: {
        params: idParams,
        querystring: z.object({
          rank: z.coerce.number().int().min(0).default(0),
          attempt: z.coerce.number().int().min(0).optional(),
          offset: z.coerce.number().int().min(0).default(0),
          limit: z.coerce.number().int().min(1).max(maxLogReadBytes).default(maxLogReadBytes),
        }),
        tags: ['jobs'],
        description:
          'At most `limit` bytes (default and largest 1 MiB) of a rank log from `offset` (over everything the rank wrote; bytes before `x-cube-log-start` were rotated out). Headers: `x-cube-log-size` (everything written so far), `x-cube-log-start`, `x-cube-log-offset` (where this reply starts), `x-cube-log-next-offset`.',
      },
      config: viewer,
    },
    async (request, reply) => {
      const job = await getJob(request.params.id, request.principal);
      const attempt = request.query.attempt ?? job.attempt;
      const path = rankLogPath(dataDir, job.id, attempt, request.query.rank);
      // Only the asked range is read: a big log never sits in memory whole.
      const range = await rankLogs.read(path, {
        offset: request.query.offset,
        limit: request.query.limit,
      });
      return reply
        .header('x-cube-log-size', String(range.size))
        .header('x-cube-log-start', String(range.start))
        .header('x-cube-log-offset', String(range.offset))
        .header('x-cube-log-next-offset', String(range.nextOffset))
        .header('x-cube-attempt', String(attempt))
        .type('text/plain; charset=utf-8')
        .send(range.bytes);
    },
  );

  api.get('/api/v1/nodes', { schema: { tags: ['nodes'] }, config: viewer }, async () => ({
    nodes: await store.listNodes(),
  }));

  async function getNode(id: string): Promise<Node> {
    const byId = await store.getNode(id);
    if (byId !== null) return byId;
    const byName = (await store.listNodes()).find((n) => n.name === id && n.state !== 'left');
    if (byName === undefined)
      throw new CubeError('UNKNOWN_ID', `no node "${id}"`, { where: { field: 'node' } });
    return byName;
  }

  api.post(
    '/api/v1/nodes/:id/cordon',
    { schema: { params: idParams, tags: ['nodes'] }, config: admin },
    async (request) => {
      const node = await getNode(request.params.id);
      if (node.state === 'cordoned') return node;
      if (node.state !== 'ready')
        throw new CubeError(
          'INFEASIBLE',
          `node ${node.name} is ${node.state}; only a ready node can be cordoned`,
          { where: { node: node.name } },
        );
      return store.updateNode(node.id, { state: 'cordoned' }, [
        { kind: 'node-cordoned', nodeId: node.id, data: { by: 'user' } },
      ]);
    },
  );

  api.post(
    '/api/v1/nodes/:id/uncordon',
    { schema: { params: idParams, tags: ['nodes'] }, config: admin },
    async (request) => {
      const node = await getNode(request.params.id);
      if (node.state !== 'cordoned') return node;
      return store.updateNode(node.id, { state: 'ready' }, [
        { kind: 'node-uncordoned', nodeId: node.id, data: { reason: 'by a user' } },
      ]);
    },
  );

  api.post(
    '/api/v1/nodes/:id/faults',
    {
      schema: {
        params: idParams,
        body: z.object({
          kind: z.enum(['kill-node', 'kill-rank', 'fail-probe']),
          jobId: z.string().optional(),
          rank: z.int().min(0).optional(),
        }),
        tags: ['nodes'],
      },
      config: admin,
    },
    async (request, reply) => {
      if (options.allowFaultInjection !== true)
        throw new CubeError(
          'FORBIDDEN',
          'fault injection is off on this control plane; start it with --allow-fault-injection to allow it',
          { where: { field: '--allow-fault-injection' } },
        );
      const node = await getNode(request.params.id);
      orchestrator.injectFault(node.id, request.body.kind, {
        ...(request.body.jobId === undefined ? {} : { jobId: request.body.jobId }),
        ...(request.body.rank === undefined ? {} : { rank: request.body.rank }),
      });
      return reply.status(202).send({ ok: true, node: node.name, fault: request.body.kind });
    },
  );

  api.get(
    '/api/v1/events',
    {
      schema: {
        querystring: z.object({
          after: z.coerce.number().int().min(0).optional(),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000),
        }),
        tags: ['events'],
      },
      config: viewer,
    },
    async (request) => {
      const events = await store.listEvents({
        ...(request.query.after === undefined ? {} : { afterId: request.query.after }),
        limit: request.query.limit,
      });
      const visible = await visibleTo(request.principal);
      return { events: events.filter(visible) };
    },
  );

  /**
   * Which events a caller may see: all for viewers and admins; for a `user`, the cluster's
   * (no job) and those of its own jobs.
   */
  async function visibleTo(principal: Principal): Promise<(e: Event) => boolean> {
    const owner = ownerScope(principal);
    if (owner === null) return () => true;
    const own = new Set((await store.listJobs()).filter((j) => j.owner === owner).map((j) => j.id));
    return (e) => e.jobId === undefined || own.has(e.jobId);
  }

  registerTokenRoutes(app, { store, tickets });

  // Server-sent events: the durable log first (after `Last-Event-ID` or `?after=`), then live.
  api.get(
    '/api/v1/stream',
    {
      schema: {
        querystring: z.object({
          job: z.string().optional(),
          after: z.coerce.number().int().min(0).optional(),
          ticket: z.string().optional(),
        }),
        tags: ['events'],
        description:
          'Server-sent events. Authenticated by `Authorization: Bearer` or, for browsers, a single-use `?ticket=` from `POST /api/v1/stream-tickets`; never by a token in the URL.',
      },
      config: { access: { role: 'viewer', ticket: true } },
    },
    async (request, reply) => {
      const jobId = request.query.job;
      if (jobId !== undefined) await getJob(jobId, request.principal);
      const owner = ownerScope(request.principal);
      // For a `user`: whether each job is its own (looked up once per job, then remembered).
      const owned = new Map<string, boolean>();
      const visible = async (event: Event): Promise<boolean> => {
        if (owner === null || event.jobId === undefined) return true;
        let mine = owned.get(event.jobId);
        if (mine === undefined) {
          mine = (await store.getJob(event.jobId))?.owner === owner;
          owned.set(event.jobId, mine);
        }
        return mine;
      };
      const lastHeader = request.headers['last-event-id'];
      const after =
        request.query.after ?? (typeof lastHeader === 'string' ? Number(lastHeader) : undefined);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      // Sent at once, so a client knows it is connected before the first event.
      raw.write(': connected\n\n');
      let lastSent = after ?? 0;
      let chain = Promise.resolve();
      // Events go out in id order; the ownership check may wait on the store, so they queue.
      const send = (event: Event): void => {
        chain = chain
          .then(async () => {
            if (event.id <= lastSent) return;
            if (jobId !== undefined && event.jobId !== jobId) return;
            if (!(await visible(event))) return;
            lastSent = event.id;
            raw.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
          })
          .catch(() => undefined);
      };
      const queued: Event[] = [];
      let replaying = true;
      const unsubscribe = store.subscribe((events) => {
        for (const e of events)
          if (replaying) queued.push(e);
          else send(e);
      });
      if (after !== undefined)
        for (const e of await store.listEvents({
          ...(jobId === undefined ? {} : { jobId }),
          afterId: after,
        }))
          send(e);
      replaying = false;
      for (const e of queued) send(e);
      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), 15_000);
      request.raw.on('close', () => {
        clearInterval(keepAlive);
        unsubscribe();
      });
    },
  );

  registerSimRoutes(app, { compute: registerPlanRoutes(app) });
  await registerWebRoutes(app, { store });
  return app;
}
