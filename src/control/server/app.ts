import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import swagger from '@fastify/swagger';
import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
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
  NodeHealthSchema,
  NodeLabelsSchema,
  NodeRoleSchema,
  parseJobSpec,
  validateJobSpec,
  type Event,
  type Node,
} from '../model/index.ts';
import type { StateStore } from '../store/index.ts';
import type { Orchestrator } from '../orchestrator/orchestrator.ts';
import type { ControlMetrics } from './metrics.ts';
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
}

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

const logsBody = z.object({
  jobId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  attempt: z.int().min(0),
  rank: z.int().min(0),
  stream: z.enum(['stdout', 'stderr']),
  text: z.string(),
});

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}

function unauthorized(reply: FastifyReply, message: string): FastifyReply {
  return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message, where: {} } });
}

/** The rank log file of one attempt. */
export function rankLogPath(dataDir: string, jobId: string, attempt: number, rank: number): string {
  return join(dataDir, 'logs', jobId, String(attempt), `rank-${rank}.log`);
}

/**
 * The control plane's HTTP API (docs/control-protocol.md): the agents' join, heartbeat, event
 * and log routes; the users' jobs, nodes, events, logs and live stream; `/metrics` and the
 * OpenAPI document. Errors are `{error: {code, message, where}}` with the CubeError's status.
 */
export async function buildControlApp(options: ControlAppOptions): Promise<FastifyInstance> {
  const { store, orchestrator, metrics, dataDir } = options;
  const app = fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
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

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, () => app.swagger());

  const api = app.withTypeProvider<ZodTypeProvider>();

  // --- agents -------------------------------------------------------------------------------
  api.post(
    '/api/v1/agents/join',
    { schema: { body: joinBody, tags: ['agents'] } },
    async (request) => {
      const body = request.body;
      if (!(await store.verifyJoinToken(body.joinToken)))
        throw new CubeError('BAD_FLAG', 'the join token is not valid', {
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

  async function agentNode(request: FastifyRequest, nodeId: string): Promise<Node | null> {
    const token = bearer(request);
    return token === null ? null : store.authenticateNode(nodeId, token);
  }

  api.post(
    '/api/v1/agents/:nodeId/heartbeat',
    { schema: { params: nodeParams, body: heartbeatBody, tags: ['agents'] } },
    async (request, reply) => {
      const started = performance.now();
      const node = await agentNode(request, request.params.nodeId);
      if (node === null) return unauthorized(reply, 'missing or bad node credential');
      const commands = await orchestrator.heartbeat(node, {
        ...(request.body.health === undefined ? {} : { health: request.body.health }),
        ranks: request.body.ranks,
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
    },
    async (request, reply) => {
      const node = await agentNode(request, request.params.nodeId);
      if (node === null) return unauthorized(reply, 'missing or bad node credential');
      await orchestrator.agentEvents(node, request.body.events);
      return { ok: true };
    },
  );

  api.post(
    '/api/v1/agents/:nodeId/logs',
    { schema: { params: nodeParams, body: logsBody, tags: ['agents'] } },
    async (request, reply) => {
      const node = await agentNode(request, request.params.nodeId);
      if (node === null) return unauthorized(reply, 'missing or bad node credential');
      const { jobId, attempt, rank, text } = request.body;
      const path = rankLogPath(dataDir, jobId, attempt, rank);
      await mkdir(join(path, '..'), { recursive: true });
      await appendFile(path, text);
      return { ok: true };
    },
  );

  // --- users --------------------------------------------------------------------------------
  app.addHook('onRequest', async (request, reply) => {
    const url = request.url;
    if (
      !url.startsWith('/api/v1/') ||
      url.startsWith('/api/v1/agents/') ||
      url.startsWith('/api/v1/openapi.json')
    )
      return;
    const token = bearer(request) ?? (new URL(url, 'http://x').searchParams.get('token') || null);
    if (token === null)
      return unauthorized(reply, 'missing API token (Authorization: Bearer <token>)');
    if (!(await store.verifyApiToken(token))) return unauthorized(reply, 'bad API token');
  });

  api.post('/api/v1/jobs', { schema: { tags: ['jobs'] } }, async (request, reply) => {
    const body = request.body;
    const spec =
      typeof body === 'object' && body !== null && 'yaml' in body && typeof body.yaml === 'string'
        ? parseJobSpec(body.yaml, { format: 'yaml' })
        : validateJobSpec(body);
    const job = await store.createJob(spec);
    // Schedule at once, but after the reply is out: the pass can take a while for a big gang.
    setImmediate(() => void orchestrator.tick());
    return reply.status(201).send(job);
  });

  api.get('/api/v1/jobs', { schema: { tags: ['jobs'] } }, async () => ({
    jobs: await store.listJobs(),
  }));

  async function getJob(
    id: string,
  ): Promise<NonNullable<Awaited<ReturnType<StateStore['getJob']>>>> {
    const job = await store.getJob(id);
    if (job === null)
      throw new CubeError('UNKNOWN_ID', `no job "${id}"`, { where: { field: 'id' } });
    return job;
  }

  api.get('/api/v1/jobs/:id', { schema: { params: idParams, tags: ['jobs'] } }, async (request) => {
    const job = await getJob(request.params.id);
    const checkpoints = await store.listCheckpoints(job.id);
    const progress = await store.listProgress(job.id, { limit: 1_000_000 });
    const last = progress.at(-1) ?? null;
    return { ...job, checkpoints, lastProgress: last };
  });

  api.post(
    '/api/v1/jobs/:id/cancel',
    { schema: { params: idParams, tags: ['jobs'] } },
    async (request) => orchestrator.cancel(request.params.id),
  );

  api.get(
    '/api/v1/jobs/:id/events',
    {
      schema: {
        params: idParams,
        querystring: z.object({ after: z.coerce.number().int().min(0).optional() }),
        tags: ['jobs'],
      },
    },
    async (request) => {
      await getJob(request.params.id);
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
    },
    async (request) => {
      await getJob(request.params.id);
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
        }),
        tags: ['jobs'],
      },
    },
    async (request, reply) => {
      const job = await getJob(request.params.id);
      const attempt = request.query.attempt ?? job.attempt;
      const path = rankLogPath(dataDir, job.id, attempt, request.query.rank);
      let text: string;
      let size = 0;
      try {
        size = (await stat(path)).size;
        text = (await readFile(path)).subarray(request.query.offset).toString('utf8');
      } catch {
        // No output yet (or no such rank in that attempt): an empty log.
        text = '';
      }
      return reply
        .header('x-cube-log-size', String(size))
        .header('x-cube-attempt', String(attempt))
        .type('text/plain')
        .send(text);
    },
  );

  api.get('/api/v1/nodes', { schema: { tags: ['nodes'] } }, async () => ({
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
    { schema: { params: idParams, tags: ['nodes'] } },
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
    { schema: { params: idParams, tags: ['nodes'] } },
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
    },
    async (request, reply) => {
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
    },
    async (request) => ({
      events: await store.listEvents({
        ...(request.query.after === undefined ? {} : { afterId: request.query.after }),
        limit: request.query.limit,
      }),
    }),
  );

  // Server-sent events: the durable log first (after `Last-Event-ID` or `?after=`), then live.
  api.get(
    '/api/v1/stream',
    {
      schema: {
        querystring: z.object({
          job: z.string().optional(),
          after: z.coerce.number().int().min(0).optional(),
          token: z.string().optional(),
        }),
        tags: ['events'],
      },
    },
    async (request, reply) => {
      const jobId = request.query.job;
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
      const send = (event: Event): void => {
        if (event.id <= lastSent) return;
        if (jobId !== undefined && event.jobId !== jobId) return;
        lastSent = event.id;
        raw.write(`id: ${event.id}\nevent: ${event.kind}\ndata: ${JSON.stringify(event)}\n\n`);
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
